"""A real refine round (`python -m pipeline.refine`, DVC, Keras, MLflow on tiny params): it
adds the report's proposed entries to the sweep as it stands, every entry already there kept,
so the round's decision compares all of them, and it trains only the new entries' models: the
others come from the model store (docs/reuse.md). (The loop with fake experiments:
tests/test_refine.py; the refusal of uncommitted edits: tests/test_refine_refusal.py.)"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.support.params import tiny_params
from tests.support.project import make_project, mlflow_runs

pytestmark = pytest.mark.slow


def test_a_round_grows_the_sweep_by_the_reports_bracket(tmp_path: Path):
    params = tiny_params()
    # Rate 1.0 on every layer cannot learn (told apart from rate 0 on any data), so rate 0 is
    # chosen with a neighbour to bracket toward; the weight-decay entry is off the rate axis.
    params["sweep"] = {
        "l2_0": {"l2": 0.0},
        "l2_1": {"l2": 1.0},
        "decay_3": {"weight_decay": 3.0},
    }
    lab = make_project(tmp_path / "lab", params)
    lab.dvc("repro")
    lab.run("git", "add", "-A")
    lab.run("git", "commit", "-qm", "the sweep")
    said = json.loads((lab.root / "reports" / "decision.json").read_text())
    assert said["chosen_entry"] == "l2_0", said
    proposed = dict(re.findall(r"\+sweep\.(\w+)=\{l2: ([\d.e-]+)\}", said["next_commands"][0]))
    assert proposed, said["next_commands"]

    done = lab.run(sys.executable, "-m", "pipeline.refine", "--rounds", "1")
    assert "dvc exp run -n refine_1 -S +sweep." in done.stderr, done.stderr

    # The round added exactly the report's entries; the sweep's own are as they were.
    grown = YAML(typ="safe").load(lab.params_path.read_text())
    assert grown["sweep"] == params["sweep"] | {n: {"l2": float(r)} for n, r in proposed.items()}
    assert {k: v for k, v in grown.items() if k != "sweep"} == {
        k: v for k, v in params.items() if k != "sweep"
    }
    metrics = sorted(p.stem for p in (lab.root / "metrics").glob("*.json"))
    assert metrics == sorted([*params["sweep"], *proposed])
    # The round's decision pairs the chosen entry with every other, old and new alike.
    decision = json.loads((lab.root / "refit" / "decision.json").read_text())["decision"]
    compared = {decision["choice"]["chosen"]["name"]}
    compared |= {c["other"]["name"] for c in decision["comparisons"]}
    assert compared == set(grown["sweep"])
    assert "refine_1" in lab.dvc("exp", "show", "--csv").stdout
    (round_run,) = [r for r in mlflow_runs(lab) if r.info.run_name == "sweep refine_1"]
    assert round_run.data.metrics["models_trained"] == len(proposed)
    assert round_run.data.metrics["models_reused"] == len(params["sweep"])

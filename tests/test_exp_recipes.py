"""docs/pipeline.md's and docs/params.md's experiment recipes as a user meets them, run as
the pages show them: `dvc exp run --temp` tries one entry and leaves the workspace alone,
uncommitted edits included; the `dvc exp show` recipes show the answer in a real 80-column
terminal (tmux); `dvc exp apply` brings the experiment into the workspace, overwriting an
uncommitted edit as the page warns. (The other pages' commands: tests/test_docs_commands.py.)"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from pipeline.choosing.next_rates import EXP_SHOW_BEST
from tests.support.docs_commands import blocks_of
from tests.support.docs_lab import run_documented, snapshot
from tests.support.project import copy_project, mlflow_runs
from tests.support.terminal import assert_fits, in_terminal

pytestmark = [pytest.mark.slow, pytest.mark.services]  # tmux


def test_one_entry_in_a_temporary_copy_shown_in_80_columns_then_applied(
    docs_lab_once: Path, tmp_path: Path
):
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux (apt-get install tmux; `python -m pipeline.bootstrap setup`)")
    project = copy_project(docs_lab_once, tmp_path / "lab")
    params = project.params_path
    # An uncommitted edit that changes no model (docs/reuse.md): the experiment reuses both.
    params.write_text(params.read_text().replace("group_size: 16", "group_size: 8"))
    before = snapshot(project)
    run_temp, show_entry = blocks_of("docs/pipeline.md")
    assert "--temp" in run_temp

    # "the committed sweep and its models stay as they are, and so does the workspace,
    # uncommitted edits included"
    ran = run_documented(project, run_temp)
    assert "applied to your workspace" not in ran
    assert snapshot(project) == before
    assert project.run("git", "status", "--porcelain").stdout == " M params.yaml\n"
    # "it trains one model"
    parent = next(r for r in mlflow_runs(project) if r.info.run_name == "sweep try_2e_2")
    assert parent.data.metrics["models_trained"] == 1
    assert parent.data.metrics["models_reused"] == 2

    # The new entry's validation error, on screen in 80 columns.
    screen = in_terminal(project, show_entry)
    assert_fits(screen)
    table = list(csv.DictReader(io.StringIO(project.dvc("exp", "show", "--csv").stdout)))
    tried = next(row for row in table if row["Experiment"] == "try_2e_2")
    (row,) = [line for line in screen if "[try_2e_2]" in line]
    assert row.split()[-1] == tried["metrics/l2_2e_2.json:val_error"] != "", (screen, tried)

    # docs/params.md: each experiment's best entry and errors, best first; one entry across
    # experiments; the metrics against the last commit. All in 80 columns.
    best_recipe, entry_recipe, metrics_diff, metrics_show = blocks_of("docs/params.md")
    assert best_recipe == EXP_SHOW_BEST  # the recipe the report prints
    screen = in_terminal(project, best_recipe)
    assert_fits(screen)
    header = next(line for line in screen if "Experiment" in line)
    assert header.split() == ["Experiment", "best_entry", "best_test_error", "best_val_error"]
    (row,) = [line for line in screen if "[try_2e_2]" in line]
    shown = [tried[k] for k in ("best_entry", "best_test_error", "best_val_error")]
    assert row.split()[-3:] == shown, (screen, tried)
    assert shown[0] in {"l2_0", "l2_1e_2", "l2_2e_2"}  # the grown sweep's best
    entry_screen = in_terminal(project, entry_recipe)
    assert_fits(entry_screen)
    assert any("metrics/l2_1e_2.json:val_error" in line for line in entry_screen), entry_screen
    run_documented(project, metrics_diff)
    # Its output in 80 columns: tests/test_metrics_width.py, with the default entry names.
    assert "val_error=" in run_documented(project, metrics_show)
    assert snapshot(project) == before

    # "an edit of params.yaml is part of the experiment"; `dvc exp apply` "overwrites
    # uncommitted edits of those files without asking"
    params.write_text(params.read_text().replace("batch_size: 64", "batch_size: 32"))
    run_documented(project, "dvc exp apply try_2e_2")
    applied = YAML(typ="safe").load(params.read_text())
    assert applied["sweep"] == {"l2_0": {"l2": 0.0}, "l2_1e_2": {"l2": 0.01},
                                "l2_2e_2": {"l2": 0.02}}  # fmt: skip
    assert applied["compute"]["group_size"] == 8
    assert applied["train"]["batch_size"] == 64  # the later edit is gone
    metrics = sorted(p.name for p in (project.root / "metrics").glob("*.json"))
    assert metrics == ["l2_0.json", "l2_1e_2.json", "l2_2e_2.json"]
    sweep = (project.root / "reports" / "sweep.csv").read_text()
    assert "l2_2e_2" in sweep  # the reports are the experiment's

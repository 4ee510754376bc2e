"""MLflow always reflects the sweep, whatever DVC skipped: a fresh clone with the committed
reports and an empty store, then `dvc repro -f train`, each leave complete runs (stage
`record`, pipeline/tracking/results.py), and `record` logs nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core import contracts
from pipeline.tracking import views
from tests.support.project import (
    ALWAYS_RUN,
    Project,
    children_of,
    mlflow_runs,
    parent_runs,
    ran_stages,
)

pytestmark = pytest.mark.slow


def _assert_complete(project: Project, parent, runs: list) -> None:
    """`parent` holds the report and each of its children its model's final metrics, equal
    to the files `evaluate` and `report` wrote."""
    from mlflow.tracking import MlflowClient

    best = json.loads((project.root / "reports" / "best.json").read_text())
    said = json.loads((project.root / "reports" / "decision.json").read_text())
    assert parent.data.tags["best_entry"] == best["best_entry"]
    assert parent.data.metrics["best_val_error"] == best["best_val_error"]
    note = parent.data.tags["mlflow.note.content"]
    # The verdict first, one glance from the links below it.
    assert note.split("\n\n")[0] == f"**Chosen: {said['chosen_entry']}.** {said['verdict']}"
    if said["data_note"]:  # last, after the links
        assert note.endswith(f"\n\n{said['data_note']}")
    assert "](#/" in note and "127.0.0.1" not in note  # relative: any host, any port
    client = MlflowClient(tracking_uri=project.tracking_uri())
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.csv", "sweep.md", "choosing.md", "plots"} <= artifacts
    pngs = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert pngs == {p.name for p in (project.root / "reports" / "plots").glob("*.png")}
    children = children_of(runs, parent.info.run_id)
    assert children
    rates = pd.read_csv(project.root / "reports" / "plots" / "error_vs_rate.csv")
    rates = dict(rates.drop_duplicates("entry")[["entry", "l2_rate"]].values)
    for child in children:
        entry = child.data.tags["entry"]
        details = json.loads((project.root / "evaluation" / f"{entry}.json").read_text())
        (seed,) = details["seeds"]
        # At metrics/' 5 significant digits, the figures MLflow's table shows whole.
        for name, value in seed["metrics"].items():
            assert child.data.metrics[name] == contracts.rounded(value), name
        assert child.data.tags["chosen"] == str(entry == said["chosen_entry"]).lower()
        if entry in rates:  # the chart's x, single-rate entries only
            assert child.data.params["L2 rate"] == views.rate_label(rates[entry], entry)
        else:
            assert "L2 rate" not in child.data.params


def test_every_parent_run_is_complete_whatever_dvc_skipped(reproduced: Project):
    reproduced.run("git", "add", "-A")
    reproduced.run("git", "commit", "-qm", "the sweep and its committed reports")
    clone = Project(reproduced.root.parent / "clone")
    reproduced.run("git", "clone", "-q", str(reproduced.root), str(clone.root))
    assert not (clone.root / "mlflow.db").exists()  # an empty store, as in a fresh clone

    # The newcomer's first `dvc repro`: the committed reports come out the same, so DVC skips
    # `report`; `record` still fills the parent run that `train` made.
    first = clone.dvc("repro")
    stages = ran_stages(first.stdout)
    assert stages.get("train") == "ran" and "report" not in stages, first.stdout
    assert stages.get("record") == "ran", first.stdout
    assert clone.run("git", "status", "--porcelain").stdout == ""  # no committed file moved
    runs = mlflow_runs(clone)
    (parent,) = parent_runs(runs)
    _assert_complete(clone, parent, runs)
    assert "the sweep in MLflow, best on validation first" in first.stderr

    # Retraining bit-identical models (the README's remedy for a store without the runs):
    # DVC then skips `evaluate` and `report`; the new parent and its children get their
    # results all the same.
    clone.dvc("repro", "-f", "train")
    again = clone.dvc("repro")
    assert ran_stages(again.stdout) == ALWAYS_RUN, again.stdout
    runs = mlflow_runs(clone)
    parents = parent_runs(runs)
    assert len(parents) == 2
    for parent in parents:
        _assert_complete(clone, parent, runs)
    assert clone.run("git", "status", "--porcelain").stdout == ""

    # Nothing changed: `record` runs, finds every parent complete, and logs nothing again.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=clone.tracking_uri())
    child = children_of(runs, parents[0].info.run_id)[0].info.run_id
    assert len(client.get_metric_history(child, "val_error")) == 1
    assert ran_stages(clone.dvc("repro").stdout) == ALWAYS_RUN
    assert len(client.get_metric_history(child, "val_error")) == 1
    assert len(mlflow_runs(clone)) == len(runs)

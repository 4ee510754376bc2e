"""docs/team.md's and docs/decision.md's queued experiments, run as written in a scratch
copy with tiny params: each exits 0, and since every one runs in a temporary copy
(`--queue`), the workspace is checked to stay exactly as it was. team.md's two workers start
on a new local store, which they create together: every run lands, one parent per
experiment. choosing-l2.md: tests/test_docs_commands_grids.py; the coverage test and the other
pages: tests/test_docs_commands.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.docs_lab import experiments, run_page_keeping_the_workspace
from tests.support.project import Project, copy_project, mlflow_runs, model_runs, parent_runs

pytestmark = pytest.mark.slow


def _one_parent_per_experiment(lab: Project, rates: set[float]) -> None:
    """Every run FINISHED; one sweep parent per queued experiment, named after it, with the
    experiment's model runs (evaluated) nested under it; `l2_1e_2` at each queued rate."""
    runs = mlflow_runs(lab)
    parents = {run.info.run_id: run for run in parent_runs(runs)}
    models = model_runs(runs)
    assert len(parents) == len(rates) and len(models) == 2 * len(rates)
    assert {run.info.status for run in runs} == {"FINISHED"}
    for run in models:
        parent = parents[run.data.tags["mlflow.parentRunId"]]
        assert parent.info.run_name == f"sweep {run.data.tags['dvc_exp_name']}"
        assert parent.data.tags["dvc_exp_name"] == run.data.tags["dvc_exp_name"]
        assert "test_error" in run.data.metrics  # evaluate and record reached it
    tried = {float(r.data.params["l2"]) for r in models if r.info.run_name == "l2_1e_2"}
    assert tried == rates


def test_team_on_a_new_local_store_then_decision_in_one_copy(docs_lab_once: Path, tmp_path: Path):
    lab = copy_project(docs_lab_once, tmp_path / "lab")
    # team.md's two workers open a new local store at the same moment (mlflow.db.lock).
    for name in ("mlflow.db", "mlflow.db.lock"):
        (lab.root / name).unlink(missing_ok=True)
    shutil.rmtree(lab.root / "mlartifacts", ignore_errors=True)
    run_page_keeping_the_workspace(lab, "docs/team.md")
    rates = [r.get("sweep.l2_1e_2.l2") for r in experiments(lab).values()]
    assert {"0.02", "0.05"} <= set(rates), rates
    _one_parent_per_experiment(lab, {0.02, 0.05})

    run_page_keeping_the_workspace(lab, "docs/decision.md")
    # Three experiments, each cross-validated: DVC accepted every key (data.digits.label_noise).
    rows = experiments(lab).values()
    assert len([r for r in rows if r.get("choose.folds") == "5"]) == 3

"""Parallel experiments with `dvc queue` on the default local store: every run recorded, each
experiment's `train` as one parent run with its model run nested under it."""

from __future__ import annotations

import pytest
from conftest import Project, model_runs, write_yaml
from ruamel.yaml import YAML
from team import run_queued_experiments

pytestmark = pytest.mark.slow

RATES = (0.0, 0.01, 0.1)  # three experiments, two workers: one waits in the queue


def one_entry_project(project: Project, experiment: str = "l2-lab") -> None:
    """The test project with one sweep entry and two epochs: a queued experiment is cheap."""
    params = YAML(typ="safe").load(project.params_path.read_text())
    params["base"]["experiment"] = experiment
    params["train"]["epochs"] = 2
    params["sweep"] = {"plain": {"l2": 0.0}}
    write_yaml(project.params_path, params)
    project.run("git", "commit", "-qam", "one entry")


def check_runs(client, experiment: str, rates: tuple[float, ...]) -> list:
    """One model run per experiment, each nested under its own experiment's sweep parent."""
    n = len(rates)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    every_run = client.search_runs([found.experiment_id], max_results=1000)
    runs = model_runs(every_run)
    parents = {r.info.run_id: r for r in every_run if r.data.tags.get("sweep") == "parent"}
    assert len(runs) == n
    assert len(parents) == n
    assert {r.info.status for r in every_run} == {"FINISHED"}
    assert len({r.data.tags["dvc_exp_name"] for r in runs}) == n
    for run in runs:
        parent = parents[run.data.tags["mlflow.parentRunId"]]
        assert parent.data.tags["dvc_exp_name"] == run.data.tags["dvc_exp_name"]
        assert parent.info.run_name == f"sweep {run.data.tags['dvc_exp_name']}"
        assert run.info.run_name == run.data.tags["entry"] == "plain"
    assert all("test_error" in r.data.metrics for r in runs)  # evaluate reached each run
    assert sorted(float(r.data.params["l2"]) for r in runs) == sorted(rates)
    return runs


def test_queued_experiments_on_a_new_local_store_all_land(project: Project):
    one_entry_project(project)
    assert not (project.root / "mlflow.db").exists()  # the workers create it together
    run_queued_experiments(project, [f"sweep.plain.l2={rate}" for rate in RATES], jobs=2)

    from mlflow.tracking import MlflowClient

    check_runs(MlflowClient(tracking_uri=project.tracking_uri()), "l2-lab", RATES)
    shown = project.dvc("exp", "show", "--json").stdout
    assert all(f"exp{n}" in shown for n in range(len(RATES)))

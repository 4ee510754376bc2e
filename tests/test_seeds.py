"""Repeats over seeds: one model and one MLflow run per seed, mean ± spread in the report;
and a DVC experiment as one MLflow parent run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ruamel.yaml import YAML

from pipeline.core.contracts import rounded
from pipeline.core.spread import seed_summary
from pipeline.core.task import CLASSIFICATION_TASK
from tests.support.params import write_yaml
from tests.support.project import Project, mlflow_runs, model_runs, parent_runs


def test_seed_summary_is_mean_and_sample_std():
    names = CLASSIFICATION_TASK.spread_metrics()
    per_seed = [{name: value for name in names} for value in (0.1, 0.2, 0.6)]
    summary = seed_summary(per_seed, names)
    assert summary["n_seeds"] == 3
    assert summary["val_error_mean"] == pytest.approx(0.3)
    assert summary["val_error_std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert seed_summary(per_seed[:1], names)["test_error_std"] == 0.0


@pytest.mark.slow
def test_an_experiment_with_repeat_seeds_is_one_parent_run_over_every_seed(project: Project):
    """`dvc exp run` is `dvc repro` under a name: one execution of `train`, so one MLflow
    parent run named after the experiment, with a model run per entry and seed under it."""
    params = YAML(typ="safe").load(project.params_path.read_text())
    params["base"]["repeat_seeds"] = [7]
    params["sweep"] = {"plain": {"l2": 0.0}}
    write_yaml(project.params_path, params)
    project.dvc("exp", "run", "-n", "repeats")

    assert (project.root / "models" / "plain" / "repeats" / "seed_7" / "model.keras").is_file()
    record = json.loads((project.root / "metrics" / "plain.json").read_text())
    assert record["n_seeds"] == 2
    details = json.loads((project.root / "evaluation" / "plain.json").read_text())
    base_seed = params["base"]["seed"]
    assert [s["seed"] for s in details["seeds"]] == [base_seed, 7]

    runs = mlflow_runs(project)
    (parent,) = parent_runs(runs)
    assert parent.info.run_name == "sweep repeats"
    models = model_runs(runs)
    assert {run.data.tags["dvc_exp_name"] for run in runs} == {"repeats"}
    assert {run.info.run_name: run.data.tags["seed"] for run in models} == {
        "plain": str(base_seed),
        "plain-seed7": "7",
    }
    assert {run.info.status for run in models} == {"FINISHED"}
    assert {run.data.tags.get("mlflow.parentRunId") for run in models} == {parent.info.run_id}
    by_seed = {int(run.data.tags["seed"]): run for run in models}
    assert {s["seed"] for s in details["seeds"]} == set(by_seed)
    for seed in details["seeds"]:
        run = by_seed[seed["seed"]]
        assert run.data.metrics["val_error"] == rounded(seed["metrics"]["val_error"])
    # In full: MLflow's 5 digits move the std of close values by more than 1e-4.
    val_errors = [seed["metrics"]["val_error"] for seed in details["seeds"]]
    assert record["val_error_mean"] == pytest.approx(np.mean(val_errors), rel=1e-4)
    assert record["val_error_std"] == pytest.approx(np.std(val_errors, ddof=1), rel=1e-4)

    table = (project.root / "reports" / "sweep.csv").read_text().splitlines()[0].split(",")
    assert {"val_error_mean", "val_error_std", "n_seeds"} <= set(table)
    assert "±" in (project.root / "reports" / "sweep.md").read_text()
    errors = (project.root / "reports" / "plots" / "error_vs_rate.csv").read_text()
    assert "error_std" in errors.splitlines()[0]

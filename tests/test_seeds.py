"""Repeats over seeds: one model and one MLflow run per seed, mean ± spread in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import Project, write_yaml
from ruamel.yaml import YAML

from pipeline.seeds import SPREAD_METRICS, seed_summary


def test_seed_summary_is_mean_and_sample_std():
    per_seed = [{name: value for name in SPREAD_METRICS} for value in (0.1, 0.2, 0.6)]
    summary = seed_summary(per_seed)
    assert summary["n_seeds"] == 3
    assert summary["val_error_mean"] == pytest.approx(0.3)
    assert summary["val_error_std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert seed_summary(per_seed[:1])["test_error_std"] == 0.0


@pytest.mark.slow
def test_repeat_seeds_train_evaluate_and_report_every_seed(project: Project):
    from mlflow.tracking import MlflowClient

    params = YAML(typ="safe").load(project.params_path.read_text())
    params["base"]["repeat_seeds"] = [7]
    params["sweep"] = {"plain": {"l2": 0.0}}
    write_yaml(project.params_path, params)
    project.dvc("repro")

    assert (project.root / "models" / "plain" / "repeats" / "seed_7" / "model.keras").is_file()
    record = json.loads((project.root / "metrics" / "plain.json").read_text())
    assert record["n_seeds"] == 2

    client = MlflowClient(tracking_uri=project.tracking_uri())
    experiment = client.get_experiment_by_name("l2-lab")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    models = [run for run in runs if run.data.tags.get("sweep") != "parent"]
    parent = next(run for run in runs if run.data.tags.get("sweep") == "parent")
    assert sorted(run.data.tags["seed"] for run in models) == sorted(
        [str(params["base"]["seed"]), "7"]
    )
    assert {run.info.status for run in models} == {"FINISHED"}
    assert {run.data.tags.get("mlflow.parentRunId") for run in models} == {parent.info.run_id}
    assert record["seed_run_ids"]["7"] in {run.info.run_id for run in models}
    val_errors = [run.data.metrics["val_error"] for run in models]
    assert record["val_error_mean"] == pytest.approx(np.mean(val_errors))
    assert record["val_error_std"] == pytest.approx(np.std(val_errors, ddof=1))

    table = (project.root / "reports" / "sweep.csv").read_text().splitlines()[0].split(",")
    assert {"val_error_mean", "val_error_std", "n_seeds"} <= set(table)
    assert "±" in (project.root / "reports" / "sweep.md").read_text()
    errors = (project.root / "reports" / "plots" / "error_vs_rate.csv").read_text()
    assert "error_std" in errors.splitlines()[0]

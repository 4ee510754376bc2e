"""End to end: `dvc repro` on a throwaway copy of the project, checked through DVC and MLflow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import Project, write_yaml
from ruamel.yaml import YAML

pytestmark = pytest.mark.slow

ENTRIES = ("plain", "layerwise")


def _runs(project: Project, experiment: str = "l2-lab"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri())
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return client, []
    runs = client.search_runs([found.experiment_id], max_results=1000)
    # The entries' runs: the report's sweep parent run is tested in test_report.py.
    return client, [run for run in runs if run.data.tags.get("sweep") != "parent"]


def _ran_stages(output: str) -> set[str]:
    return {
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    }


def test_repro_trains_evaluates_and_records_every_entry(project: Project):
    first = project.dvc("repro")
    assert _ran_stages(first.stdout) == {
        "prepare", "train@plain", "train@layerwise", "evaluate@plain", "evaluate@layerwise",
        "report",
    }  # fmt: skip

    client, runs = _runs(project)
    assert sorted(run.info.run_name for run in runs) == sorted(ENTRIES)
    assert {run.info.status for run in runs} == {"FINISHED"}
    epochs = YAML(typ="safe").load(project.params_path.read_text())["train"]["epochs"]
    for run in runs:
        entry = run.info.run_name
        metrics_file = json.loads((project.root / "metrics" / f"{entry}.json").read_text())
        assert metrics_file["mlflow_run_id"] == run.info.run_id
        for name in ("train_error", "val_error", "test_error", "l2_penalty", "generalization_gap"):
            assert run.data.metrics[name] == pytest.approx(metrics_file[name])
        assert run.data.tags["dvc_stage"] == f"train@{entry}"
        assert len(client.get_metric_history(run.info.run_id, "epoch_val_error")) == epochs
        assert {"l2_rate.hidden_1", "l2_rate.hidden_2", "l2_rate.output"} <= run.data.params.keys()

    layerwise = next(run for run in runs if run.info.run_name == "layerwise")
    assert layerwise.data.params["l2_rate.hidden_1"] == "0.01"
    assert layerwise.data.params["l2_rate.output"] == "0.0"
    assert layerwise.data.metrics["l2_penalty"] > 0

    # The model in MLflow is the model DVC tracks: same predictions.
    import keras
    import mlflow.keras

    from pipeline import data

    test_split = data.read_split(project.root / "data" / "prepared", "test")
    model_dir = project.root / "models" / "layerwise"
    run_file = json.loads((model_dir / "run.json").read_text())
    mlflow.set_tracking_uri(project.tracking_uri())
    logged = mlflow.keras.load_model(run_file["model_uri"])
    saved = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    np.testing.assert_allclose(
        logged.predict(test_split.features, verbose=0),
        saved.predict(test_split.features, verbose=0),
        rtol=1e-6,
    )
    artifacts = {a.path for a in client.list_artifacts(layerwise.info.run_id)}
    assert {"weights", "config.json", "layerwise.json"} <= artifacts

    table = (project.root / "reports" / "sweep.csv").read_text().splitlines()
    assert len(table) == 1 + len(ENTRIES)
    shown = project.dvc("metrics", "show", "--json").stdout
    assert "test_error" in shown

    # Nothing changed: nothing runs, and no MLflow run is added.
    assert _ran_stages(project.dvc("repro").stdout) == set()
    assert len(_runs(project)[1]) == len(ENTRIES)


def test_changing_one_entry_retrains_only_that_entry(project: Project):
    project.dvc("repro")
    params = YAML(typ="safe").load(project.params_path.read_text())
    params["sweep"]["layerwise"]["l2"] = [0.02, 0.0, 0.0]
    params["sweep"]["added"] = {"l2": 0.001}
    write_yaml(project.params_path, params)

    second = project.dvc("repro")
    ran = _ran_stages(second.stdout)
    assert {"train@layerwise", "train@added", "evaluate@layerwise", "evaluate@added"} <= ran
    assert "train@plain" not in ran and "evaluate@plain" not in ran
    names = sorted(run.info.run_name for run in _runs(project)[1])
    assert names == sorted(["plain", "layerwise", "layerwise", "added"])


def test_bad_params_fail_before_training_and_lose_nothing(project: Project):
    project.dvc("repro")
    lock_before = (project.root / "dvc.lock").read_text()
    model_before = (project.root / "models" / "plain" / "model.keras").read_bytes()
    params = YAML(typ="safe").load(project.params_path.read_text())
    params["sweep"]["plain"]["l2"] = -1.0
    params["sweep"]["evil; touch pwned"] = {"l2": 0.1}
    write_yaml(project.params_path, params)

    failed = project.dvc("repro", check=False)
    assert failed.returncode != 0
    error_lines = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "params.yaml" in error_lines[0], failed.stderr
    assert not (project.root / "pwned").exists()
    assert "Running stage 'train@" not in failed.stdout
    assert (project.root / "dvc.lock").read_text() == lock_before
    assert (project.root / "models" / "plain" / "model.keras").read_bytes() == model_before
    assert (project.root / "data" / "prepared" / "train.parquet").is_file()
    runs = _runs(project)[1]
    assert len(runs) == len(ENTRIES) and {r.info.status for r in runs} == {"FINISHED"}

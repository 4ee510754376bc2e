"""End to end through `dvc repro`: a convnet sweep on digits as images, and a user's builder
from builders/ with rates given by glob patterns. Rates land on the named layers, every entry
has its MLflow run with a loadable model, and a tower equals its model trained alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.task import CLASSIFICATION_TASK
from tests.support.params import tiny_params, write_yaml
from tests.support.project import UP_TO_DATE, Project, model_runs

pytestmark = pytest.mark.slow

CNN_LAYERS = ["conv_1", "conv_2", "dense", "output"]


def _runs(project: Project) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri())
    experiment = client.get_experiment_by_name("l2-lab")
    if experiment is None:
        return []
    return model_runs(client.search_runs([experiment.experiment_id], max_results=100))


def _write_params(project: Project, model: dict, sweep: dict) -> dict:
    params = tiny_params()
    params["data"]["shape"] = "image"  # digits as 8x8x1 images: no download
    params["train"]["epochs"] = 3
    params["model"].update(model)
    params["sweep"] = sweep
    write_yaml(project.params_path, params)
    return params


def _check_runs_and_models(project: Project, sweep: dict, layers: list[str]) -> dict:
    """One FINISHED run per entry, with `l2_rate.<layer>` params, and the model that MLflow
    holds predicts what the model DVC tracks predicts. Returns entry -> rate per layer."""
    import keras
    import mlflow.keras

    from pipeline.datasets import prepared
    from pipeline.modeling import regularize

    runs = {run.info.run_name: run for run in _runs(project)}
    assert sorted(runs) == sorted(sweep)
    assert {run.info.status for run in runs.values()} == {"FINISHED"}
    test_split = prepared.read_split(project.root / "data" / "prepared", "test")
    assert test_split.features.shape[1:] == (8, 8, 1)
    mlflow.set_tracking_uri(project.tracking_uri())
    rates = {}
    for entry, run in runs.items():
        folder = project.root / "models" / entry
        config = json.loads((folder / "config.json").read_text())
        assert list(config["l2_rate"]) == layers
        rates[entry] = config["l2_rate"]
        assert {f"l2_rate.{layer}" for layer in layers} <= run.data.params.keys()
        for layer, rate in config["l2_rate"].items():
            assert float(run.data.params[f"l2_rate.{layer}"]) == rate
        saved = keras.saving.load_model(folder / "model.keras", safe_mode=True)
        on_layers = {
            layer.name: regularize.layer_rate(layer)
            for layer in regularize.regularizable_layers(saved)
        }
        assert on_layers == pytest.approx(config["l2_rate"])
        logged = mlflow.keras.load_model(run.data.tags["model_uri"])
        np.testing.assert_allclose(
            logged.predict(test_split.features, verbose=0),
            saved.predict(test_split.features, verbose=0),
            rtol=1e-6,
        )
        metrics = json.loads((project.root / "metrics" / f"{entry}.json").read_text())
        assert run.data.metrics["val_error"] == pytest.approx(metrics["val_error"], rel=1e-4)
        details = json.loads((project.root / "evaluation" / f"{entry}.json").read_text())
        assert {f"sq_weights_{layer}" for layer in layers} <= details["seeds"][0]["metrics"].keys()
    assert sweep.keys() <= {
        line.split(" | ")[0].removeprefix("| ")
        for line in (project.root / "reports" / "sweep.md").read_text().splitlines()
    }
    return rates


def test_a_cnn_sweep_on_digit_images_end_to_end(project: Project):
    sweep = {
        "plain": {"l2": 0.0},
        "convs": {"l2": {"conv_*": 0.01}},
        "listed": {"l2": [0.0, 0.0, 0.001, 0.01]},
    }
    cnn = {"filters": [4, 8], "kernel_size": 3, "dense_units": 16}
    params = _write_params(project, {"builder": "cnn", "cnn": cnn}, sweep)
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "cnn sweep")
    project.dvc("repro")

    rates = _check_runs_and_models(project, sweep, CNN_LAYERS)
    assert rates["convs"] == {"conv_1": 0.01, "conv_2": 0.01, "dense": 0.0, "output": 0.0}
    assert rates["listed"] == {"conv_1": 0.0, "conv_2": 0.0, "dense": 0.001, "output": 0.01}
    report = (project.root / "reports" / "sweep.md").read_text()
    assert "| convs | 0.01 | 0.01 | 0 | 0 |" in report  # the rate of each named layer
    record = json.loads((project.root / "models" / "sweep.json").read_text())
    assert record["layers"] == CNN_LAYERS

    # The tower DVC saved is the model trained alone, to the last bit.
    from pipeline.core.runtime import init_tensorflow

    seed = params["base"]["seed"]
    init_tensorflow(seed)
    import keras

    from pipeline.config import BuilderRef, load_config
    from pipeline.datasets import prepared
    from pipeline.modeling.builders import build_tower
    from tests.support.reference import max_weight_difference, train_alone

    config = load_config(project.params_path)
    prepared_dir = project.root / "data" / "prepared"
    train = prepared.read_split(prepared_dir, "train")
    val = prepared.read_split(prepared_dir, "val")
    builder = BuilderRef.of(config.model, project.root)
    alone = build_tower(
        builder, (8, 8, 1), 10, rates["convs"], seed=seed, name="convs", task=CLASSIFICATION_TASK
    )
    train_alone(alone, train, val, config.train, seed=seed, task=CLASSIFICATION_TASK)
    saved = keras.saving.load_model(project.root / "models" / "convs" / "model.keras")
    assert max_weight_difference(alone, saved) == 0.0


def test_a_user_builder_with_glob_rates_end_to_end_after_a_refused_pattern(project: Project):
    model = {"builder": "builders/example.py:small_convnet"}
    layers = ["conv_stem", "conv_separable", "dense_hidden", "dense_output"]
    # A pattern that matches no layer: prepare builds the model once and refuses it, before
    # any run or folder exists.
    _write_params(project, model, {"plain": {"l2": 0.0}, "bad": {"l2": {"pool*": 0.1}}})
    failed = project.dvc("repro", check=False)
    assert failed.returncode != 0
    error = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert error == [
        "error: prepare: sweep.bad.l2: 'pool*' matches no regularizable layer; the layers are "
        + ", ".join(layers)
    ], failed.stderr
    assert _runs(project) == []
    assert not (project.root / "models").exists()
    assert not list(project.root.glob("*.partial"))

    sweep = {"plain": {"l2": 0.0}, "globbed": {"l2": {"conv_*": 0.001, "dense_out*": 0.01}}}
    _write_params(project, model, sweep)
    project.dvc("repro")
    rates = _check_runs_and_models(project, sweep, layers)
    assert rates["globbed"] == {
        "conv_stem": 0.001, "conv_separable": 0.001, "dense_hidden": 0.0, "dense_output": 0.01,
    }  # fmt: skip
    assert not (project.root / "builders" / "__pycache__").exists()
    status = project.dvc("status", "--json")
    # `record` and `register` run on every `dvc repro` (dvc.yaml); nothing else is out of date.
    assert json.loads(status.stdout) == UP_TO_DATE, status.stdout

"""A regression through the stage's path: the task and the target's std from meta.json to
the groups (in process, on a worker, the refit's), history.csv and MLflow epochs, the
model store, the initial-penalty warning, the memory estimate and progress lines."""

from __future__ import annotations

import csv
import io
import logging
import math

import numpy as np
import pytest

from pipeline.config import BuilderRef, ModelConfig
from pipeline.config.schema import TrainConfig
from pipeline.core.task import CLASSIFICATION_TASK, REGRESSION_TASK
from tests.support.training import write_regression_prepared

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")


def _mlp_config(**changes) -> ModelConfig:
    return ModelConfig(hidden_units=[12, 8], activation="tanh", **changes)


def _recipe(meta, prepared_dir):
    """A group recipe as compute.planning.group_recipe makes it from meta.json: the task and
    the target's std travel with it."""
    from pipeline.compute import Recipe

    return Recipe(
        builder=BuilderRef(_mlp_config()), input_shape=meta.input_shape,
        n_classes=meta.n_classes, prepared_dir=prepared_dir, base_seed=42,
        train=TrainConfig(learning_rate=0.01, batch_size=16, epochs=3),
        task=meta.task, target_std=meta.target_std,
    )  # fmt: skip


def test_a_regression_group_writes_rmse_histories(tmp_path):
    """The stage's path: a Recipe from meta.json (task, target std) to a trained group whose
    epochs are the regression's metrics, history.csv's columns in the task's order."""
    from pipeline.compute import GroupTask, ModelTask
    from pipeline.compute.work import run_group
    from pipeline.core import contracts
    from pipeline.model_folders import HistoryRecorder, epochs_of

    prepared_dir = write_regression_prepared(tmp_path / "prepared")
    meta = contracts.read_meta(prepared_dir)
    recipe = _recipe(meta, prepared_dir)
    rates = (("hidden_1", 0.01), ("hidden_2", 0.01), ("output", 0.0))
    task = GroupTask(0, (ModelTask("l2", rates, 42, 0.0),), None, recipe)
    history = HistoryRecorder(REGRESSION_TASK.epoch_metrics)
    result = run_group(task, history)
    assert result.diverged_at_epoch == {}
    assert result.weights["l2"][-1].shape == (1,)  # the output's bias: one unit
    text = history.csv_bytes("l2").decode()
    header = next(csv.reader(io.StringIO(text)))
    assert header == ["epoch", "loss", "data_loss", "l2_penalty", "train_rmse",
                      "val_data_loss", "val_rmse"]  # fmt: skip
    epochs = epochs_of(text.encode())
    assert sorted(epochs) == [1, 2, 3]
    for row in epochs.values():
        assert row["train_rmse"] == pytest.approx(math.sqrt(row["data_loss"]) * meta.target_std)
        assert row["val_rmse"] == pytest.approx(
            math.sqrt(row["val_data_loss"]) * meta.target_std
        )
        assert row["l2_penalty"] > 0
    # Learning: the validation RMSE falls below the target's own spread (predicting the mean).
    assert epochs[3]["val_rmse"] < meta.target_std


def test_the_refit_trains_a_regression_on_every_pooled_row(tmp_path):
    """The refit stage's group of one (compute.refit_group's training set) on a regression:
    its standardised targets are trained on unflipped, and it reports on its own rows."""
    from pipeline.compute import REFIT, GroupTask, ModelTask
    from pipeline.compute.work import group_splits, run_group
    from pipeline.core import contracts

    prepared_dir = write_regression_prepared(tmp_path / "prepared")
    meta = contracts.read_meta(prepared_dir)
    recipe = _recipe(meta, prepared_dir)
    task = GroupTask(0, (ModelTask("l2-refit", (("hidden_1", 0.01),
                                                ("hidden_2", 0.01), ("output", 0.0)), 42, 0.0),),
                     REFIT, recipe)  # fmt: skip
    train, val = group_splits(task)
    pooled = meta.rows["train"] + meta.rows["val"]
    assert len(train.labels) == pooled and train.labels.dtype == np.float32
    epochs: list[dict] = []
    result = run_group(task, lambda epoch, per_tower: epochs.append(per_tower["l2-refit"]))
    assert result.diverged_at_epoch == {} and len(epochs) == 3
    assert np.array_equal(val.labels, train.labels)  # validated on its own training rows
    assert epochs[-1]["val_rmse"] < meta.target_std


def test_the_initial_penalty_warning_compares_with_the_standardised_variance(caplog):
    from pipeline.compute.sweep_plan import initial_data_loss, warn_overwhelming_penalties
    from pipeline.config.entries import EntrySpec, ModelSpec
    from pipeline.modeling.builders import build_tower

    assert initial_data_loss(REGRESSION_TASK, 0) == 1.0
    assert initial_data_loss(CLASSIFICATION_TASK, 10) == pytest.approx(math.log(10))
    rates = {"hidden_1": 1e4, "hidden_2": 1e4, "output": 1e4}
    entry = EntrySpec("huge", tuple(rates.items()), 0.0)
    model = build_tower(BuilderRef(_mlp_config()), (8,), 1, rates, seed=1, name="huge",
                        task=REGRESSION_TASK)  # fmt: skip
    with caplog.at_level(logging.WARNING):
        warn_overwhelming_penalties([ModelSpec(entry, 1, False)], [model], 0, REGRESSION_TASK)
    (line,) = [r.getMessage() for r in caplog.records if "sweep.huge" in r.getMessage()]
    assert "the data loss (1.00)" in line and "collapse to a constant prediction" in line


def test_the_memory_estimate_counts_the_output_width():
    from pipeline.config.memory import mlp_parameter_count

    # 8 -> 12 -> 8 -> out: the output layer has 8 * out weights and out biases.
    assert mlp_parameter_count(8, [12, 8], 10) - mlp_parameter_count(8, [12, 8], 1) == 9 * 9


def test_progress_lines_name_the_tasks_figure():
    from pipeline.core.progress import latest_figures

    row = {"train_rmse": 3.5, "val_rmse": 4.25}
    assert latest_figures({"a": row}, REGRESSION_TASK) == "a train/val rmse 3.500/4.250"
    many = {f"m{i}": {"train_rmse": i, "val_rmse": 10 - i} for i in range(5)}
    assert "val rmse best 6.000 (m4)" in latest_figures(many, REGRESSION_TASK)
    classified = {"a": {"train_error": 0.1, "val_error": 0.2}}
    assert latest_figures(classified, task=CLASSIFICATION_TASK) == "a train/val err 0.100/0.200"


def test_the_train_stage_writes_and_reuses_a_regressions_histories(tmp_path, monkeypatch):
    """At the artifacts: `train` on a regression's prepared folder writes history.csv with the
    task's columns, MLflow epoch keys of the same names, a model with one linear output; a
    second run takes the models from the store and writes the same bytes."""
    import keras
    from mlflow.tracking import MlflowClient

    from pipeline.core import contracts
    from pipeline.train import train
    from tests.support.params import tiny_params, write_yaml

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("L2LAB_MODEL_STORE", str(tmp_path / "model-store"))
    params = tiny_params()
    params["train"]["epochs"] = 2
    write_yaml(tmp_path / "params.yaml", params)
    prepared_dir = write_regression_prepared(tmp_path / "prepared")
    train(tmp_path / "params.yaml", prepared_dir, tmp_path / "models")

    columns = ["epoch", *REGRESSION_TASK.epoch_metrics]
    histories = {}
    for entry in params["sweep"]:
        folder = contracts.model_dir(tmp_path / "models", entry)
        histories[entry] = (folder / contracts.HISTORY_FILE).read_bytes()
        rows = list(csv.reader(io.StringIO(histories[entry].decode())))
        assert rows[0] == columns and len(rows) == 1 + params["train"]["epochs"]
        model = keras.saving.load_model(folder / contracts.MODEL_FILE, safe_mode=True)
        assert model.get_layer("output").units == 1
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(params["base"]["experiment"])
    runs = [r for r in client.search_runs([experiment.experiment_id])
            if r.data.tags.get("entry") == "layerwise"]  # fmt: skip
    epoch_keys = {key for key in runs[0].data.metrics if key.startswith("epoch_")}
    assert epoch_keys == {f"epoch_{name}" for name in REGRESSION_TASK.epoch_metrics}

    train(tmp_path / "params.yaml", prepared_dir, tmp_path / "again")
    for entry, history in histories.items():
        folder = contracts.model_dir(tmp_path / "again", entry)
        assert (folder / contracts.HISTORY_FILE).read_bytes() == history
    reused = [r for r in client.search_runs([experiment.experiment_id])
              if r.data.tags.get("reused") == "true" and r.data.tags.get("entry") == "layerwise"]
    assert {k for k in reused[0].data.metrics if k.startswith("epoch_")} == epoch_keys


@pytest.mark.slow  # starts a worker process
def test_a_regression_group_on_a_local_worker_gives_the_same_bits(tmp_path):
    """The task and the target's std travel in the picklable Recipe: a worker process builds
    and trains the same regression towers as the stage's own process."""
    from pipeline.compute import ModelTask, cut_groups, run_groups
    from pipeline.config import ComputeConfig
    from pipeline.core import contracts
    from tests.support.training import max_difference, weights_of

    prepared_dir = write_regression_prepared(tmp_path / "prepared")
    meta = contracts.read_meta(prepared_dir)
    recipe = _recipe(meta, prepared_dir)
    rates = ("hidden_1", "hidden_2", "output")
    towers = [
        (ModelTask(name, tuple(zip(rates, r, strict=True)), seed, decay), None)
        for name, r, decay, seed in [("plain", (0, 0, 0), 0.0, 7), ("l2", (0.01,) * 3, 0.0, 8)]
    ]
    tasks = cut_groups(towers, 1, recipe)
    epochs: dict[str, list] = {}

    def keep(epoch, per_tower):
        for name, metrics in per_tower.items():
            epochs.setdefault(name, []).append(metrics)

    here = weights_of(run_groups(tasks, ComputeConfig(), keep))
    here_epochs, epochs = epochs, {}
    there = weights_of(run_groups(tasks, ComputeConfig(workers=1), keep))
    assert max_difference(here, there) == 0.0
    assert epochs == here_epochs and list(epochs["l2"][0]) == list(REGRESSION_TASK.epoch_metrics)

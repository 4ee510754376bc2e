"""Regression through the training path: one linear output, mean squared error against the
standardised target, RMSE epochs in the target's units, towers still exactly their models
trained alone (the regression case of tests/test_towers.py)."""

from __future__ import annotations

import csv
import io
import logging
import math

import numpy as np
import pytest

from pipeline.config import BuilderRef, ModelConfig
from pipeline.config.schema import TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.core.runtime import init_tensorflow
from pipeline.core.task import CLASSIFICATION_TASK, REGRESSION_TASK
from tests.support.training import regression_splits, write_regression_prepared

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")

# name, per-layer rates, weight decay, seed (as tests/test_towers.py's SWEEP).
SWEEP = [
    ("plain", [0.0, 0.0], 0.0, 7),
    ("layerwise", [0.01, 0.0], 0.0, 7),
    ("decay", [0.0, 0.0], 0.5, 7),
    ("both-seed8", [0.003, 0.003], 0.2, 8),
]
EPOCHS = 6
SETTINGS = TrainConfig(learning_rate=0.01, batch_size=16, epochs=EPOCHS)


@pytest.fixture(scope="module")
def splits():
    return regression_splits()


def _model(name, rates, seed):
    import keras

    from tests.support.reference import build_mlp

    keras.utils.set_random_seed(seed)
    return build_mlp(8, 1, [24], "tanh", rates, name=name, output_activation=None)


def _alone(splits, name, rates, decay, seed):
    from tests.support.reference import train_alone

    data, std = splits
    init_tensorflow(seed)
    model = _model(name, rates, seed)
    history: list[dict] = []
    train_alone(
        model, data["train"], data["val"], SETTINGS, seed=seed, entry=name, weight_decay=decay,
        sinks=[lambda epoch, metrics: history.append(metrics)], task=REGRESSION_TASK,
        target_std=std,
    )  # fmt: skip
    return model, history


def test_every_regression_tower_equals_its_model_trained_alone(splits):
    from pipeline.modeling.objective import Objective
    from pipeline.modeling.towers import Tower, fit_towers
    from tests.support.reference import max_weight_difference

    data, std = splits
    init_tensorflow(0)  # a different global seed: the towers must not depend on it
    towers = [Tower(_model(n, r, s), s, d) for n, r, d, s in SWEEP]
    history: list[dict] = []
    outcome = fit_towers(
        towers, data["train"], data["val"], SETTINGS,
        sinks=[lambda epoch, per_tower: history.append(per_tower)],
        objective=Objective(REGRESSION_TASK, std),
    )  # fmt: skip
    assert outcome.diverged_at_epoch == {}
    for (name, rates, decay, seed), tower in zip(SWEEP, towers, strict=True):
        alone, alone_history = _alone(splits, name, rates, decay, seed)
        assert max_weight_difference(tower.model, alone) == 0.0, name
        for per_tower, alone_epoch in zip(history, alone_history, strict=True):
            fused_epoch = per_tower[name]
            assert list(fused_epoch) == list(REGRESSION_TASK.epoch_metrics)
            for key in ("data_loss", "train_rmse", "val_data_loss", "val_rmse"):
                assert fused_epoch[key] == alone_epoch[key], (name, key)
            assert fused_epoch["l2_penalty"] == pytest.approx(alone_epoch["l2_penalty"], rel=1e-5)
    # The RMSEs are in the target's units: the standardised MSE's root times the std.
    last = history[-1]["plain"]
    assert last["train_rmse"] == math.sqrt(last["data_loss"]) * std
    predictions = towers[0].model(data["val"].features).numpy()
    assert predictions.shape == (len(data["val"].labels), 1)
    rmse = np.sqrt(np.mean((predictions[:, 0] - data["val"].labels) ** 2, dtype=np.float64)) * std
    assert last["val_rmse"] == pytest.approx(rmse, rel=1e-5)


def test_the_mse_is_per_row_not_a_rows_by_rows_broadcast():
    """Labels (rows,) against outputs (rows, 1): the squared error of each row with its own
    prediction, as Keras's loss object pairs them."""
    from pipeline.modeling.objective import Objective

    labels = np.array([0.0, 1.0, 2.0], np.float32)
    outputs = np.array([[0.0], [0.0], [0.0]], np.float32)
    objective = Objective(REGRESSION_TASK, 1.0)
    data_loss, squared_error = objective.row_figures(labels, outputs)
    np.testing.assert_array_equal(np.asarray(data_loss), [0.0, 1.0, 4.0])
    np.testing.assert_array_equal(np.asarray(squared_error), [0.0, 1.0, 4.0])
    assert float(objective.loss()(labels, outputs)) == pytest.approx(5.0 / 3)


def _mlp_config(**changes) -> ModelConfig:
    return ModelConfig(hidden_units=[12, 8], activation="tanh", **changes)


def test_the_mlp_ends_in_one_linear_unit_from_build_mlps_exact_weights():
    import keras

    from pipeline.modeling.builders import build_tower
    from tests.support.reference import build_mlp, max_weight_difference

    rates = {"hidden_1": 0.01, "hidden_2": 0.0, "output": 0.003}
    builder = BuilderRef(_mlp_config())
    model = build_tower(builder, (8,), 1, rates, seed=42, name="m", task=REGRESSION_TASK)
    output = model.get_layer("output")
    assert output.units == 1 and output.activation is keras.activations.linear
    keras.utils.set_random_seed(42)
    reference = build_mlp(8, 1, [12, 8], "tanh", list(rates.values()), "m", None)
    assert max_weight_difference(model, reference) == 0.0
    features = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    values = model(features).numpy()
    assert values.shape == (5, 1) and np.any(values < 0)  # not squashed into probabilities


def test_the_cnn_ends_in_one_linear_unit():
    import keras

    from pipeline.modeling.builders import build_base

    model = build_base(BuilderRef(_mlp_config(builder="cnn")), (8, 8, 1), 1, REGRESSION_TASK)
    output = model.get_layer("output")
    assert output.units == 1 and output.activation is keras.activations.linear
    assert tuple(model.outputs[0].shape) == (None, 1)
    classifier = build_base(BuilderRef(_mlp_config(builder="cnn")), (8, 8, 1), 10)
    assert classifier.get_layer("output").activation is keras.activations.softmax


OWN_BUILDERS = {
    "wide.py:build": (
        "import keras\n"
        "def build(input_shape, n_classes):\n"
        "    inputs = keras.Input(shape=input_shape)\n"
        "    return keras.Model(inputs, keras.layers.Dense(3, name='head')(inputs))\n",
        r"^model.builder = 'builders/wide.py:build': the model's output has shape \(3,\) per "
        r"row; .*regression.*needs shape \(1,\): end with Dense\(1\)",
    ),
    "soft.py:build": (
        "import keras\n"
        "def build(input_shape, n_classes):\n"
        "    return keras.Sequential([keras.Input(shape=input_shape),\n"
        "                             keras.layers.Dense(n_classes, activation='softmax')])\n",
        r"^model.builder = 'builders/soft.py:build': the model's output is 1 for every row, "
        r"as a softmax over one unit always is; .*end with Dense\(1\)",
    ),
    "activation.py:build": (
        "import keras\n"
        "def build(input_shape, n_classes):\n"
        "    inputs = keras.Input(shape=input_shape)\n"
        "    x = keras.layers.Dense(n_classes, name='head')(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Softmax()(x))\n",
        r"output is 1 for every row",
    ),
}


@pytest.mark.parametrize("spec", list(OWN_BUILDERS))
def test_a_users_builder_with_the_wrong_head_is_a_one_line_error(tmp_path, spec):
    from pipeline.modeling.builders import build_base

    source, message = OWN_BUILDERS[spec]
    (tmp_path / "builders").mkdir()
    (tmp_path / "builders" / spec.partition(":")[0]).write_text(source)
    builder = BuilderRef.of(_mlp_config(builder=f"builders/{spec}"), tmp_path)
    with pytest.raises(ConfigError, match=message) as info:
        build_base(builder, (8,), 1, REGRESSION_TASK)
    assert "\n" not in str(info.value)


def test_a_users_builder_is_called_with_one_output_and_keeps_its_layers(tmp_path):
    from pipeline.modeling.builders import build_tower, regularizable_names

    (tmp_path / "builders").mkdir()
    (tmp_path / "builders" / "own.py").write_text(
        "import keras\n"
        "def build(input_shape, n_classes):\n"
        "    inputs = keras.Input(shape=input_shape)\n"
        "    x = keras.layers.Dense(6, activation='relu', name='body')(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(n_classes, name='value')(x))\n"
    )
    builder = BuilderRef.of(_mlp_config(builder="builders/own.py:build"), tmp_path)
    assert regularizable_names(builder, (8,), 1, REGRESSION_TASK) == ["body", "value"]
    model = build_tower(builder, (8,), 1, {"body": 0.01, "value": 0.0}, seed=1, name="t",
                        task=REGRESSION_TASK)  # fmt: skip
    assert tuple(model.outputs[0].shape) == (None, 1)


def test_a_width_that_does_not_fit_the_task_is_refused():
    from pipeline.modeling.builders import build_base

    with pytest.raises(ValueError, match="classification model cannot have 0 outputs"):
        build_base(BuilderRef(_mlp_config()), (8,), 0, CLASSIFICATION_TASK)
    with pytest.raises(ValueError, match="regression model cannot have 3 outputs"):
        build_base(BuilderRef(_mlp_config()), (8,), 3, REGRESSION_TASK)


def test_a_regression_group_writes_rmse_histories(tmp_path):
    """The stage's path: a Recipe from meta.json (task, target std) to a trained group whose
    epochs are the regression's metrics, history.csv's columns in the task's order."""
    from pipeline.compute import GroupTask, ModelTask, Recipe
    from pipeline.compute.work import run_group
    from pipeline.core import contracts
    from pipeline.model_folders import HistoryRecorder, epochs_of

    prepared_dir = write_regression_prepared(tmp_path / "prepared")
    meta = contracts.read_meta(prepared_dir)
    recipe = Recipe(
        builder=BuilderRef(_mlp_config()), input_shape=meta.input_shape,
        n_classes=meta.n_classes, prepared_dir=prepared_dir, base_seed=42,
        train=TrainConfig(learning_rate=0.01, batch_size=16, epochs=3),
        task=meta.task, target_std=meta.target_std,
    )  # fmt: skip
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
    assert latest_figures(classified) == "a train/val err 0.100/0.200"


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
    from pipeline.compute import ModelTask, Recipe, cut_groups, run_groups
    from pipeline.config import ComputeConfig
    from pipeline.core import contracts
    from tests.support.training import max_difference, weights_of

    prepared_dir = write_regression_prepared(tmp_path / "prepared")
    meta = contracts.read_meta(prepared_dir)
    recipe = Recipe(
        builder=BuilderRef(_mlp_config()), input_shape=meta.input_shape,
        n_classes=meta.n_classes, prepared_dir=prepared_dir, base_seed=42,
        train=TrainConfig(learning_rate=0.01, batch_size=16, epochs=3),
        task=meta.task, target_std=meta.target_std,
    )  # fmt: skip
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


def test_a_diverging_regression_tower_is_noted_and_leaves_the_other_exact(splits):
    from pipeline.modeling.objective import Objective
    from pipeline.modeling.towers import Tower, fit_towers
    from tests.support.reference import max_weight_difference

    data, std = splits
    init_tensorflow(0)
    towers = [Tower(_model("plain", [0.0, 0.0], 7), 7, 0.0),
              Tower(_model("boom", [1e38, 1e38], 7), 7, 0.0)]  # fmt: skip
    history: list[dict] = []
    outcome = fit_towers(
        towers, data["train"], data["val"], SETTINGS,
        sinks=[lambda epoch, per_tower: history.append(per_tower)],
        objective=Objective(REGRESSION_TASK, std),
    )  # fmt: skip
    assert outcome.diverged_at_epoch == {"boom": 1}
    assert all(list(per_tower) == ["plain"] for per_tower in history)
    alone, _ = _alone(splits, "plain", [0.0, 0.0], 0.0, 7)
    assert max_weight_difference(towers[0].model, alone) == 0.0

"""Regression through the towers: one linear output trained on mean squared error against
the standardised target, RMSE epochs in the target's units, every tower still exactly its
model trained alone (the regression case of tests/test_towers.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.config.schema import TrainConfig
from pipeline.core.runtime import init_tensorflow
from pipeline.core.task import REGRESSION_TASK
from tests.support.training import regression_splits

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

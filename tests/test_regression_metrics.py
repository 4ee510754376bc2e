"""A regression model's figures in the target's units (modeling/metrics.py), computed here by
hand with numpy from the same weights: predictions and labels are un-standardised first."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.core.contracts import PreparedMeta
from pipeline.datasets.prepared import Split

pytestmark = pytest.mark.usefixtures("tensorflow")

MEAN, STD = 150.0, 40.0  # a target in its units, e.g. a dose


def regression_meta(rows: dict[str, int]) -> PreparedMeta:
    return PreparedMeta(
        source="hand-made",
        class_names=(),
        n_features=3,
        rows=rows,
        train_labels_flipped=0,
        input_shape=(3,),
        task="regression",
        target_mean=MEAN,
        target_std=STD,
    )


def tiny_model(rate: float = 0.01):
    """3 inputs -> 4 tanh units -> one linear unit, fixed weights, L2 `rate` on both."""
    import keras

    rng = np.random.default_rng(3)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                4, "tanh", kernel_regularizer=keras.regularizers.L2(rate), name="hidden_1"
            ),
            keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(rate), name="output"),
        ]
    )
    model.set_weights([rng.normal(0, 0.7, w.shape).astype("float32") for w in model.get_weights()])
    return model


def by_hand(model, split: Split) -> np.ndarray:
    """The model's predictions in units: tanh(x W1 + b1) W2 + b2, then * std + mean."""
    w1, b1, w2, b2 = (np.asarray(w, np.float64) for w in model.get_weights())
    standardised = (np.tanh(split.features.astype(np.float64) @ w1 + b1) @ w2 + b2)[:, 0]
    return standardised * STD + MEAN


def splits_of(sizes: dict[str, int]) -> dict[str, Split]:
    rng = np.random.default_rng(11)
    return {
        name: Split(rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=n).astype("float32"))
        for name, n in sizes.items()
    }


def test_regression_figures_are_in_the_target_units_as_numpy_computes_them():
    from pipeline.modeling.metrics import model_metrics, predicted_values

    model = tiny_model()
    splits = splits_of({"train": 12, "val": 9, "test": 7})
    meta = regression_meta({name: len(s.labels) for name, s in splits.items()})
    metrics = model_metrics(model, splits, meta=meta)
    for name, split in splits.items():
        predicted = by_hand(model, split)
        targets = split.labels.astype(np.float64) * STD + MEAN
        np.testing.assert_allclose(predicted_values(model, split, meta), predicted, rtol=1e-5)
        residual = predicted - targets
        mse = np.mean(residual**2)
        assert metrics[f"{name}_mse"] == pytest.approx(mse, rel=1e-5)
        assert metrics[f"{name}_rmse"] == pytest.approx(math.sqrt(mse), rel=1e-5)
        assert metrics[f"{name}_mae"] == pytest.approx(np.mean(np.abs(residual)), rel=1e-5)
        total = np.sum((targets - targets.mean()) ** 2)
        assert metrics[f"{name}_r2"] == pytest.approx(1 - np.sum(residual**2) / total, rel=1e-5)
    w1, _, w2, _ = model.get_weights()
    sq = {"hidden_1": float(np.sum(w1.astype(np.float64) ** 2)), "output": float(np.sum(w2**2))}
    assert metrics["sq_weights_hidden_1"] == pytest.approx(sq["hidden_1"], rel=1e-6)
    assert metrics["sum_sq_weights"] == pytest.approx(sum(sq.values()), rel=1e-6)
    assert metrics["l2_penalty"] == pytest.approx(0.01 * sum(sq.values()), rel=1e-6)
    # The objective training minimised: MSE on the standardised target plus the penalty.
    train = splits["train"]
    standardised_mse = np.mean(((by_hand(model, train) - MEAN) / STD - train.labels) ** 2)
    assert metrics["train_loss"] == pytest.approx(standardised_mse + metrics["l2_penalty"], 1e-5)
    assert metrics["gen_gap"] == metrics["test_rmse"] - metrics["train_rmse"]
    assert not any(k.endswith(("_error", "_xent")) for k in metrics)
    assert 0 <= metrics["near_linear_share"] <= 1  # the tanh shares as for classification


def test_predicted_values_are_float64_one_per_row():
    from pipeline.modeling.metrics import predicted_values

    split = splits_of({"val": 5})["val"]
    found = predicted_values(tiny_model(), split, regression_meta({"val": 5}))
    assert found.dtype == np.float64 and found.shape == (5,)


def test_a_classification_model_keeps_its_figures():
    import keras

    from pipeline.modeling.metrics import model_metrics

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, "softmax", name="output")])
    split = Split(np.eye(3, dtype="float32"), np.array([0, 1, 1]))
    meta = PreparedMeta(
        source="hand-made",
        class_names=("a", "b"),
        n_features=3,
        rows={"train": 3, "test": 3},
        train_labels_flipped=0,
        input_shape=(3,),
    )
    metrics = model_metrics(model, {"train": split, "test": split}, tanh_shares=False, meta=meta)
    assert {"train_error", "train_xent", "test_error", "gen_gap"} <= set(metrics)
    assert metrics["gen_gap"] == 0.0

"""Training one model as a tower of its own on real (tiny) digits data (modeling/towers.py,
the sweep's one path): determinism, divergence, and what L2 and weight decay do to the
weights."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core import contracts
from pipeline.core.runtime import init_tensorflow
from pipeline.datasets import prepared
from tests.support.training import fit_fused, prepared_splits

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("prepared")


@pytest.fixture(scope="module")
def splits(folder) -> dict[str, prepared.Split]:
    return prepared_splits(folder)


@pytest.fixture(scope="module")
def meta(folder, splits) -> contracts.PreparedMeta:
    return contracts.read_meta(folder / "prepared")


def _train(splits, rates, seed=7, epochs=15, weight_decay=0.0):
    from pipeline.modeling.towers import Tower
    from tests.support.reference import build_mlp

    init_tensorflow(seed)
    net = build_mlp(64, 10, hidden_units=[32], activation="tanh", layer_rates=rates, name="test")
    history: list[dict[str, float]] = []
    outcome = fit_fused(
        [Tower(net, seed, weight_decay)],
        splits,
        epochs=epochs,
        sinks=[lambda epoch, per_tower: history.extend(per_tower.values())],
    )
    return net, history, outcome


def test_same_seed_gives_identical_weights_and_metrics(splits, meta):
    from pipeline.modeling.metrics import model_metrics

    first, first_history, _ = _train(splits, [0.001, 0.001])
    second, second_history, _ = _train(splits, [0.001, 0.001])
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first_history == second_history
    assert model_metrics(first, splits, meta=meta) == model_metrics(second, splits, meta=meta)


def test_higher_rate_gives_smaller_weights(splits):
    from pipeline.modeling.regularize import kernel_sq_sums

    norms = [
        sum(kernel_sq_sums(_train(splits, [rate, rate])[0]).values()) for rate in (0.0, 0.003, 0.03)
    ]
    assert norms[0] > norms[1] > norms[2]


def test_epoch_metrics_split_the_loss_into_data_and_penalty(splits):
    _, plain, _ = _train(splits, [0.0, 0.0], epochs=3)
    assert all(m["l2_penalty"] == pytest.approx(0.0, abs=1e-6) for m in plain)
    _, regularized, _ = _train(splits, [0.05, 0.05], epochs=3)
    for m in regularized:
        assert m["l2_penalty"] > 0
        assert m["loss"] == pytest.approx(m["data_loss"] + m["l2_penalty"])
        assert 0.0 <= m["train_error"] <= 1.0 and 0.0 <= m["val_error"] <= 1.0


def test_a_diverging_loss_is_noted_at_its_first_epoch(splits):
    _, history, outcome = _train(splits, [1e38, 1e38], epochs=3)
    assert outcome.diverged_at_epoch == {"test": 1} and history == []


def test_final_metrics_are_consistent(splits, meta):
    from pipeline.modeling.metrics import model_metrics

    net, _, _ = _train(splits, [0.01, 0.0], epochs=5)
    metrics = model_metrics(net, splits, meta=meta)
    assert metrics["gen_gap"] == pytest.approx(
        metrics["test_error"] - metrics["train_error"]
    )
    assert metrics["l2_penalty"] == pytest.approx(0.01 * metrics["sq_weights_hidden_1"], rel=1e-6)
    assert metrics["train_loss"] == pytest.approx(
        metrics["train_xent"] + metrics["l2_penalty"]
    )


def test_weight_decay_shrinks_kernels_but_not_biases():
    import keras

    from pipeline.modeling.optimizer import PerTowerAdamW

    kernel = keras.Variable(np.full((2, 2), 4.0, dtype="float32"), name="kernel")
    bias = keras.Variable(np.full((2,), 4.0, dtype="float32"), name="bias")
    decaying = PerTowerAdamW(learning_rate=0.1, decays=[(kernel, 0.5)])
    decaying.build([kernel, bias])
    zero = np.zeros((2, 2), dtype="float32"), np.zeros((2,), dtype="float32")
    # A zero gradient makes Adam's own step zero, leaving only the decoupled decay:
    # w <- w - learning_rate * weight_decay * w.
    decaying.apply_gradients([(zero[0], kernel), (zero[1], bias)])
    np.testing.assert_allclose(kernel.numpy(), 4.0 * (1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_allclose(bias.numpy(), 4.0)


def test_weight_decay_training_gives_smaller_weights(splits):
    from pipeline.modeling.regularize import kernel_sq_sums

    norms = [
        sum(kernel_sq_sums(_train(splits, [0.0, 0.0], weight_decay=decay)[0]).values())
        for decay in (0.0, 2.0)
    ]
    assert norms[0] > norms[1]

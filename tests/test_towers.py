"""The fused sweep is exact: every tower ends with the weights of its model trained alone.

Tolerance: none. The towers' loss is a sum, which passes each tower a gradient of exactly 1,
and Adam/AdamW update each weight from its own gradient, so there is no rounding to allow
for: the test asserts max |difference| == 0 (same process, same ops, same seeds).
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config.schema import TrainConfig
from pipeline.core.runtime import init_tensorflow
from pipeline.datasets import prepared
from tests.support.training import fit_alone, fit_fused, prepared_splits

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")

# name, per-layer rates, weight decay, seed: Adam and AdamW, one rate and per-layer rates,
# and an extra seed (own initialisation and batch order) in one sweep.
SWEEP = [
    ("plain", [0.0, 0.0], 0.0, 7),
    ("layerwise", [0.01, 0.0], 0.0, 7),
    ("decay", [0.0, 0.0], 0.5, 7),
    ("both", [0.003, 0.003], 0.2, 7),
    ("layerwise-seed8", [0.01, 0.0], 0.0, 8),
    ("decay-seed9", [0.0, 0.0], 0.5, 9),
]
EPOCHS = 6
SETTINGS = TrainConfig(learning_rate=0.01, batch_size=16, epochs=EPOCHS)  # fit_alone's


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, prepared.Split]:
    return prepared_splits(tmp_path_factory.mktemp("prepared"))


def _model(name, rates, seed):
    import keras

    from tests.support.reference import build_mlp

    keras.utils.set_random_seed(seed)
    return build_mlp(64, 10, hidden_units=[24], activation="tanh", layer_rates=rates, name=name)


def _alone(splits, name, rates, decay, seed):
    init_tensorflow(seed)
    model = _model(name, rates, seed)
    history = fit_alone(model, splits, entry=name, seed=seed, epochs=EPOCHS, weight_decay=decay)
    return model, history


def _fused(splits, sweep):
    from pipeline.modeling.towers import Tower

    init_tensorflow(0)  # a different global seed: the towers must not depend on it
    inputs = [Tower(_model(n, r, s), s, d) for n, r, d, s in sweep]
    history: list[tuple[int, dict]] = []
    outcome = fit_fused(
        inputs,
        splits,
        epochs=EPOCHS,
        sinks=[lambda epoch, per_tower: history.append((epoch, per_tower))],
    )
    return {t.model.name: t.model for t in inputs}, history, outcome


@pytest.fixture(scope="module")
def fused_sweep(splits):
    """The whole SWEEP trained as towers of one graph, once for the tests that read it."""
    return _fused(splits, SWEEP)


def test_every_tower_equals_its_model_trained_alone(splits, fused_sweep):
    from tests.support.reference import max_weight_difference

    towers, history, outcome = fused_sweep
    assert outcome.diverged_at_epoch == {}
    for name, rates, decay, seed in SWEEP:
        alone, alone_history = _alone(splits, name, rates, decay, seed)
        assert max_weight_difference(towers[name], alone) == 0.0, name
        # Per-epoch validation and training figures: the same numbers to every digit, but
        # for `loss` and `l2_penalty`, which Keras and the towers sum in another order.
        for (_, per_tower), alone_epoch in zip(history, alone_history, strict=True):
            fused_epoch = per_tower[name]
            for key in ("data_loss", "train_error", "val_data_loss", "val_error"):
                assert fused_epoch[key] == alone_epoch[key], (name, key)
            assert fused_epoch["l2_penalty"] == pytest.approx(alone_epoch["l2_penalty"], rel=1e-5)


def test_towers_of_different_seeds_differ(fused_sweep):
    from tests.support.reference import max_weight_difference

    towers, _, _ = fused_sweep
    assert max_weight_difference(towers["layerwise"], towers["layerwise-seed8"]) > 0


def test_a_diverging_tower_leaves_the_others_exact(splits):
    from tests.support.reference import max_weight_difference

    sweep = [("plain", [0.0, 0.0], 0.0, 7), ("boom", [1e38, 1e38], 0.0, 7)]
    towers, history, outcome = _fused(splits, sweep)
    assert outcome.diverged_at_epoch == {"boom": 1}
    assert all("boom" not in per_tower for _, per_tower in history)
    alone, _ = _alone(splits, "plain", [0.0, 0.0], 0.0, 7)
    assert max_weight_difference(towers["plain"], alone) == 0.0
    assert not np.isfinite(towers["boom"].get_weights()[0]).all()


def test_an_extracted_tower_saves_and_loads_as_a_standalone_model(splits, tmp_path):
    import keras

    towers, _, _ = _fused(splits, SWEEP[:2])
    model = towers["layerwise"]
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    features = splits["test"].features
    np.testing.assert_array_equal(loaded(features).numpy(), model(features).numpy())
    assert [layer.name for layer in loaded.layers[1:]] == ["hidden_1", "output"]
    assert loaded.get_layer("hidden_1").kernel_regularizer.l2 == pytest.approx(0.01)


def test_groups_of_different_training_sets_in_one_process_stay_exact(splits):
    """train.py fits one group per training-set size, one after the other: each tower still
    equals its model trained alone on its own rows (nested subsets of one split)."""
    from pipeline.modeling.towers import Tower
    from tests.support.reference import fit_tower_groups, max_weight_difference

    small = prepared.Split(splits["train"].features[:40], splits["train"].labels[:40])
    groups_spec = [
        (small, [("small", [0.0, 0.0], 0.0, 7), ("small_l2", [0.01, 0.01], 0.0, 7)]),
        (splits["train"], [("full", [0.0, 0.0], 0.0, 7), ("full-seed8", [0.01, 0.0], 0.0, 8)]),
    ]
    init_tensorflow(0)
    groups = [
        ([Tower(_model(n, r, s), s, d) for n, r, d, s in sweep], split)
        for split, sweep in groups_spec
    ]
    outcome = fit_tower_groups(groups, splits["val"], SETTINGS, sinks=[])
    assert outcome.diverged_at_epoch == {}
    for (split, sweep), (inputs, _) in zip(groups_spec, groups, strict=True):
        for (name, rates, decay, seed), tower in zip(sweep, inputs, strict=True):
            alone, _ = _alone({**splits, "train": split}, name, rates, decay, seed)
            assert max_weight_difference(tower.model, alone) == 0.0, name


def test_fold_towers_equal_each_fold_trained_alone(splits):
    """choose.folds: one group per fold, each with its own training rows and its held-out
    fold as validation; every fold's tower equals that fold trained alone, and its
    per-epoch validation figures are those of its own held-out rows."""
    from pipeline.datasets.folds import fold_sets
    from pipeline.modeling.towers import Tower
    from tests.support.reference import fit_tower_groups, max_weight_difference

    pool = prepared.Split(
        np.concatenate([splits["train"].features, splits["val"].features]),
        np.concatenate([splits["train"].labels, splits["val"].labels]),
    )
    k, sweep = 3, [("plain", [0.0, 0.0], 0.0, 7), ("l2", [0.01, 0.01], 0.0, 7)]
    sets = [fold_sets(pool, k, fold, 10, 0.2, seed=42)[:2] for fold in range(2)]
    init_tensorflow(0)
    groups = [
        ([Tower(_model(f"{n}-fold{i}", r, s), s, d) for n, r, d, s in sweep], *sets[i])
        for i in range(len(sets))
    ]
    history: list[tuple[int, dict]] = []
    outcome = fit_tower_groups(
        groups,
        splits["val"],  # not used: every group has its own
        SETTINGS,
        sinks=[lambda epoch, per_tower: history.append((epoch, per_tower))],
    )
    assert outcome.diverged_at_epoch == {}
    for i, (train, held_out) in enumerate(sets):
        for (name, rates, decay, seed), tower in zip(sweep, groups[i][0], strict=True):
            fold_splits = {**splits, "train": train, "val": held_out}
            alone, alone_history = _alone(fold_splits, f"{name}-fold{i}", rates, decay, seed)
            assert max_weight_difference(tower.model, alone) == 0.0, (name, i)
            fused = [per_tower[f"{name}-fold{i}"] for _, per_tower in history
                     if f"{name}-fold{i}" in per_tower]  # fmt: skip
            assert [e["val_error"] for e in fused] == [e["val_error"] for e in alone_history]

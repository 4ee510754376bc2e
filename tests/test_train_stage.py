"""The train stage's own checks, before any training: penalties that swamp the data."""

from __future__ import annotations

import logging

import pytest

from pipeline.compute.sweep_plan import build_models, warn_overwhelming_penalties
from pipeline.config import BuilderRef, LabConfig
from pipeline.config.entries import resolve_towers
from pipeline.core.task import CLASSIFICATION_TASK
from tests.support.params import ROOT, tiny_params

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")


def _towers_and_models(sweep: dict):
    params = tiny_params()
    params["sweep"] = sweep
    params["base"]["repeat_seeds"] = [43]
    config = LabConfig.model_validate(params)
    towers = resolve_towers(config)
    return towers, build_models(
        BuilderRef.of(config.model, ROOT), towers, (64,), 10, task=CLASSIFICATION_TASK
    )


def test_a_typo_sized_rate_is_named_in_one_warning_line(caplog):
    # `1_000` is valid YAML for 1000: a rate nobody means, which collapses the model.
    towers, models = _towers_and_models({"fine": {"l2": 0.1}, "typo": {"l2": 1000.0}})
    with caplog.at_level(logging.WARNING):
        warn_overwhelming_penalties(towers, models, n_classes=10, task=CLASSIFICATION_TASK)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once per entry, not once per seed
    assert warnings[0].startswith("warning: sweep.typo: L2 rate(s) 1000 give a penalty of")
    assert "collapse" in warnings[0] and "\n" not in warnings[0]


def test_tower_models_start_as_models_built_alone():
    import keras

    from tests.support.reference import build_mlp

    towers, models = _towers_and_models({"a": {"l2": 0.0}, "b": {"l2": [0.01, 0.0, 0.0]}})
    assert [m.name for m in models] == ["a", "b", "a-seed43", "b-seed43"]
    for tower, model in zip(towers, models, strict=True):
        keras.utils.set_random_seed(tower.seed)
        alone = build_mlp(64, 10, [16, 16], "tanh", tower.entry.rates)
        for x, y in zip(model.get_weights(), alone.get_weights(), strict=True):
            assert (x == y).all()

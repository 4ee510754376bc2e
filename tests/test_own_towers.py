"""Every builder works with the one-process sweep: a convnet's and a user builder's towers end
with exactly the weights of the same model trained alone (max |difference| == 0), as
tests/test_towers.py checks for the MLP. The user builder (builders/example.py) has a
separable convolution and dropout, whose seeds must match too."""

from __future__ import annotations

import pytest

from pipeline.config import BuilderRef, CnnConfig, ModelConfig
from pipeline.config.rates import resolve_rates
from pipeline.core.runtime import init_tensorflow
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.datasets import prepared
from tests.support.params import ROOT
from tests.support.training import fit_alone, fit_fused, prepared_splits

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")

EPOCHS = 4
CNN = ModelConfig(
    builder="cnn",
    hidden_units=[8],
    activation="tanh",
    cnn=CnnConfig(filters=[4, 8], kernel_size=3, dense_units=16),
)
USER = ModelConfig(builder="builders/example.py:small_convnet", hidden_units=[8], activation="tanh")
# name, l2 as params.yaml gives it, weight decay, seed
SWEEPS = {
    "cnn": (CNN, [
        ("plain", 0.0, 0.0, 7),
        ("convs", {"conv_*": 0.003}, 0.0, 7),
        ("listed_decay", [0.01, 0.0, 0.001, 0.0], 0.3, 7),  # a list of rates, and AdamW
        ("convs-seed8", {"conv_*": 0.003}, 0.0, 8),
    ]),
    "user": (USER, [
        ("plain", 0.0, 0.0, 7),
        ("globbed", {"conv_*": 0.001, "dense_out*": 0.01}, 0.0, 7),
        ("globbed-seed9", {"conv_*": 0.001, "dense_out*": 0.01}, 0.0, 9),
    ]),
}  # fmt: skip


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, prepared.Split]:
    return prepared_splits(tmp_path_factory.mktemp("prepared"), shape="image")  # 8x8x1 digits


def _model(config, name, l2, seed, shape):
    from pipeline.modeling.builders import build_tower, regularizable_names

    builder = BuilderRef.of(config, ROOT)
    rates = dict(
        resolve_rates(l2, regularizable_names(builder, shape, 10, CLASSIFICATION_TASK), "l2")
    )
    return build_tower(builder, shape, 10, rates, seed=seed, name=name, task=CLASSIFICATION_TASK)


def _alone(config, splits, name, l2, decay, seed):
    init_tensorflow(seed)
    model = _model(config, name, l2, seed, splits["train"].features.shape[1:])
    fit_alone(model, splits, entry=name, seed=seed, epochs=EPOCHS, weight_decay=decay)
    return model


@pytest.mark.parametrize("builder", list(SWEEPS))
def test_every_tower_of_any_builder_equals_its_model_trained_alone(splits, builder):
    from pipeline.modeling.towers import Tower
    from tests.support.reference import max_weight_difference

    config, sweep = SWEEPS[builder]
    shape = splits["train"].features.shape[1:]
    assert shape == (8, 8, 1)
    init_tensorflow(0)  # a different global seed: the towers must not depend on it
    inputs = [Tower(_model(config, n, l2, s, shape), s, d) for n, l2, d, s in sweep]
    outcome = fit_fused(inputs, splits, epochs=EPOCHS)
    assert outcome.diverged_at_epoch == {}
    towers = {t.model.name: t.model for t in inputs}
    assert len(towers[sweep[1][0]].losses) > 0  # the regularized towers do carry L2
    for name, l2, decay, seed in sweep:
        alone = _alone(config, splits, name, l2, decay, seed)
        assert max_weight_difference(towers[name], alone) == 0.0, (builder, name)

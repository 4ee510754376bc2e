"""The L2 rule (modeling/regularize.py): Keras's exact penalty, on the layers it was meant for."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import BuilderRef, ModelConfig, load_config
from pipeline.config.entries import resolve_towers
from pipeline.core.task import CLASSIFICATION_TASK

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")


def test_penalty_is_rate_times_sum_of_squares_without_a_half():
    # The textbook weights 0.3, 0.1, 6: their squares sum to 36.1.
    import keras

    from pipeline.modeling.regularize import kernel_sq_sums, l2_penalty
    from tests.support.reference import build_mlp

    net = build_mlp(3, 1, hidden_units=[], activation="tanh", layer_rates=[0.01])
    output = net.get_layer("output")
    output.kernel.assign(np.array([[0.3], [0.1], [6.0]], dtype=np.float32))
    output.bias.assign(np.array([100.0], dtype=np.float32))  # biases carry no penalty
    assert kernel_sq_sums(net)["output"] == pytest.approx(36.1, rel=1e-6)
    assert l2_penalty(net) == pytest.approx(0.361, rel=1e-6)
    keras_term = float(keras.ops.sum(keras.ops.stack(net.losses)))
    assert keras_term == pytest.approx(0.361, rel=1e-6)


def test_each_layer_carries_its_own_rate():
    import keras

    from pipeline.modeling.metrics import dense_layers
    from pipeline.modeling.regularize import kernel_sq_sums, l2_penalty, layer_rate
    from tests.support.reference import build_mlp

    net = build_mlp(8, 3, hidden_units=[5, 4], activation="relu", layer_rates=[0.1, 0.0, 0.02])
    layers = dense_layers(net)
    assert [layer.name for layer in layers] == ["hidden_1", "hidden_2", "output"]
    assert [layer_rate(layer) for layer in layers] == pytest.approx([0.1, 0.0, 0.02])
    assert layers[1].kernel_regularizer is None  # rate 0: no term at all, not a zero term
    assert len(net.losses) == 2
    sq = kernel_sq_sums(net)
    expected = 0.1 * sq["hidden_1"] + 0.02 * sq["output"]
    assert l2_penalty(net) == pytest.approx(expected, rel=1e-6)
    assert float(keras.ops.sum(keras.ops.stack(net.losses))) == pytest.approx(expected, rel=1e-5)


def test_rates_survive_save_and_safe_load(tmp_path):
    import keras

    from pipeline.modeling.metrics import dense_layers
    from pipeline.modeling.regularize import l2_penalty, layer_rate
    from tests.support.reference import build_mlp

    net = build_mlp(8, 3, hidden_units=[5], activation="tanh", layer_rates=[0.03, 0.001])
    net.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert [layer_rate(layer) for layer in dense_layers(loaded)] == pytest.approx([0.03, 0.001])
    assert l2_penalty(loaded) == pytest.approx(l2_penalty(net), rel=1e-6)


def test_params_resolve_to_one_rate_per_dense_layer_for_every_tower(params_file):
    from ruamel.yaml import YAML

    from pipeline.modeling.builders import build_tower
    from pipeline.modeling.metrics import dense_layers
    from pipeline.modeling.regularize import layer_rate
    from tests.support.params import write_yaml

    params = YAML(typ="safe").load(params_file.read_text())
    params["base"]["repeat_seeds"] = [7]
    params["sweep"]["decay"] = {"weight_decay": 0.5}
    write_yaml(params_file, params)
    towers = resolve_towers(load_config(params_file))
    entries = list(YAML(typ="safe").load(params_file.read_text())["sweep"])  # in file order
    assert sorted(entries) == ["decay", "layerwise", "plain"]
    # Every entry with the base seed, then every entry again with each extra seed.
    assert [t.name for t in towers] == [*entries, *(f"{e}-seed7" for e in entries)]
    by_name = {t.name: t.entry for t in towers}
    assert by_name["layerwise"].layer_rates == (
        ("hidden_1", 0.01), ("hidden_2", 0.001), ("output", 0.0),
    )  # fmt: skip
    assert by_name["layerwise"].uniform_rate is None
    assert by_name["plain-seed7"].rates == (0.0, 0.0, 0.0)
    assert by_name["decay"].weight_decay == 0.5 and not by_name["decay"].is_pure_l2
    # The rates reach the built model's layers unchanged.
    builder = BuilderRef(ModelConfig(hidden_units=[16, 16], activation="tanh"))
    rates = dict(by_name["layerwise"].layer_rates)
    net = build_tower(builder, (8,), 3, rates, seed=1, name="layerwise", task=CLASSIFICATION_TASK)
    assert tuple(layer_rate(layer) for layer in dense_layers(net)) == by_name["layerwise"].rates

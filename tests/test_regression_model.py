"""A regression's model: the built-in MLP and CNN end in one linear unit, a user's builder
is called with one output and refused in one line when its head does not fit."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import BuilderRef, ModelConfig
from pipeline.core.errors import ConfigError
from pipeline.core.task import CLASSIFICATION_TASK, REGRESSION_TASK

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")


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
    classifier = build_base(
        BuilderRef(_mlp_config(builder="cnn")), (8, 8, 1), 10, task=CLASSIFICATION_TASK
    )
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

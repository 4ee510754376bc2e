"""L2 on any Keras model: rates resolved by number, list or glob; attached by cloning; exactly
Keras's term on exactly the configured kernels; the builders and their one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pipeline.config import BuilderRef, ModelConfig
from pipeline.config.rates import resolve_rates
from pipeline.config.schema import TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.core.runtime import init_tensorflow
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.datasets import prepared

if TYPE_CHECKING:
    import keras

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")

ROOT = Path(__file__).resolve().parent.parent


def _every_layer_type() -> keras.Model:
    """One of each regularizable layer type, with biases and non-regularizable layers."""
    import keras

    image = keras.Input(shape=(6, 6, 2), name="image")
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv2d")(image)
    x = keras.layers.Conv2DTranspose(2, 3, padding="same", name="conv2d_t")(x)
    x = keras.layers.SeparableConv2D(3, 3, padding="same", name="sep2d")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depth2d")(x)
    x = keras.layers.BatchNormalization(name="norm")(x)  # has weights, carries no L2
    x = keras.layers.Reshape((36, 3))(x)
    x = keras.layers.Conv1D(2, 3, padding="same", name="conv1d")(x)
    x = keras.layers.Conv1DTranspose(2, 3, padding="same", name="conv1d_t")(x)
    x = keras.layers.SeparableConv1D(2, 3, padding="same", name="sep1d")(x)
    x = keras.layers.DepthwiseConv1D(3, padding="same", name="depth1d")(x)
    x = keras.layers.Reshape((6, 6, 2, 1))(x)
    x = keras.layers.Conv3D(2, 3, padding="same", name="conv3d")(x)
    x = keras.layers.Conv3DTranspose(1, 3, padding="same", name="conv3d_t")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.EinsumDense("ab,bc->ac", output_shape=4, bias_axes="c", name="einsum")(x)
    tokens = keras.Input(shape=(5,), dtype="int32", name="tokens")
    e = keras.layers.Embedding(7, 3, name="embed")(tokens)
    e = keras.layers.Flatten()(e)
    x = keras.layers.Concatenate()([x, e])
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(x)
    return keras.Model([image, tokens], outputs)


# In model order (Keras orders a functional model's layers by depth: the embedding's branch
# is shallower than the einsum's).
REGULARIZABLE = ["conv2d", "conv2d_t", "sep2d", "depth2d", "conv1d", "conv1d_t", "sep1d",
                 "depth1d", "conv3d", "conv3d_t", "embed", "einsum", "dense"]  # fmt: skip


def _sum_of_squares(variables) -> float:
    return sum(float(np.sum(np.square(v.numpy().astype(np.float64)))) for v in variables)


def test_every_supported_layer_type_carries_exactly_its_rate_on_its_kernels():
    import keras

    from pipeline.modeling import regularize
    from tests.support.reference import max_weight_difference

    keras.utils.set_random_seed(1)
    base = _every_layer_type()
    assert [layer.name for layer in regularize.regularizable_layers(base)] == REGULARIZABLE
    # Distinct rates, and a 0 on two layers, which must get no term at all.
    rates = {name: 10.0 ** -(i % 4 + 1) for i, name in enumerate(REGULARIZABLE)}
    rates["conv1d"] = rates["embed"] = 0.0
    model = regularize.with_l2(base, rates)
    assert max_weight_difference(base, model) == 0.0  # the clone keeps the built weights
    assert base.losses == []  # the built model is untouched

    expected_vars = {
        "sep2d": ["depthwise_kernel", "pointwise_kernel"],
        "sep1d": ["depthwise_kernel", "pointwise_kernel"],
        "embed": ["embeddings"],
    }
    terms = {}
    for name in REGULARIZABLE:
        layer = model.get_layer(name)
        kernels = regularize.kernels(layer)
        assert [v.path.split("/")[-1] for v in kernels] == expected_vars.get(name, ["kernel"])
        assert all(not v.path.endswith("bias") for v in kernels)
        assert regularize.layer_rate(layer) == pytest.approx(rates[name])
        if getattr(layer, "bias_regularizer", None) is not None:
            raise AssertionError(f"{name}: a bias carries L2")
        terms[name] = rates[name] * _sum_of_squares(kernels)
    # model.losses: one term per regularized kernel, none for rate 0, none for biases or norm.
    losses = [float(keras.ops.convert_to_numpy(t)) for t in model.losses]
    n_kernels = sum(len(expected_vars.get(n, ["kernel"])) for n in REGULARIZABLE if rates[n] > 0)
    assert len(losses) == n_kernels
    assert sum(losses) == pytest.approx(sum(terms.values()), rel=1e-5)
    assert regularize.l2_penalty(model) == pytest.approx(sum(terms.values()), rel=1e-12)
    # Per layer: the term of each layer's own kernels, exactly rate * sum(kernel ** 2).
    for name in REGULARIZABLE:
        layer = model.get_layer(name)
        own = [float(keras.ops.convert_to_numpy(t)) for t in layer.losses]
        assert sum(own) == pytest.approx(terms[name], rel=1e-5), name


def test_a_builders_own_regularizers_are_replaced():
    import keras

    from pipeline.modeling import regularize

    inputs = keras.Input(shape=(4,))
    x = keras.layers.Dense(3, kernel_regularizer="l1", bias_regularizer="l2", name="a")(inputs)
    model = regularize.with_l2(keras.Model(inputs, x), {"a": 0.5})
    layer = model.get_layer("a")
    assert layer.bias_regularizer is None
    assert isinstance(layer.kernel_regularizer, keras.regularizers.L2)
    assert float(model.losses[0]) == pytest.approx(0.5 * _sum_of_squares([layer.kernel]), rel=1e-6)


def test_nested_models_are_cloned_with_their_rates():
    import keras

    from pipeline.modeling import regularize

    inner = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, name="inner_dense")])
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(inner(inputs))
    model = regularize.with_l2(keras.Model(inputs, outputs), {"inner_dense": 0.1, "head": 0.0})
    assert [layer.name for layer in regularize.regularizable_layers(model)] == [
        "inner_dense", "head",
    ]  # fmt: skip
    assert len(model.losses) == 1


LAYERS = ["conv_1", "conv_2", "dense", "output"]


@pytest.mark.parametrize(
    ("l2", "expected"),
    [
        (0.01, [0.01, 0.01, 0.01, 0.01]),
        ([0.1, 0.2, 0.3, 0.0], [0.1, 0.2, 0.3, 0.0]),
        ({"conv*": 1e-4, "output": 1e-3}, [1e-4, 1e-4, 0.0, 1e-3]),
        ({"conv_[2]": 0.5, "dense": 0.2}, [0.0, 0.5, 0.2, 0.0]),
    ],
)
def test_the_three_forms_of_rates(l2, expected):
    resolved = resolve_rates(l2, LAYERS, "sweep.x.l2")
    assert [name for name, _ in resolved] == LAYERS
    assert [rate for _, rate in resolved] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("l2", "message"),
    [
        ([0.1, 0.2], "sweep.x.l2 has 2 rates but the model has 4 regularizable layers "
                     r"\(conv_1, conv_2, dense, output\)"),
        ({"pool*": 0.1}, r"sweep.x.l2: 'pool\*' matches no regularizable layer; the layers are "
                         "conv_1, conv_2, dense, output"),
        ({"conv*": 0.1, "conv_2": 0.2}, r"layer 'conv_2' is matched by both 'conv\*' and 'conv_2'"),
    ],
)  # fmt: skip
def test_rates_that_do_not_fit_the_model_are_one_line_errors(l2, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve_rates(l2, LAYERS, "sweep.x.l2")
    assert "\n" not in str(info.value)


def _mlp_config(**changes) -> ModelConfig:
    return ModelConfig(hidden_units=[12, 8], activation="tanh", **changes)


def test_the_mlp_builder_starts_from_build_mlps_exact_weights():
    """The default sweep's models are unchanged: same names, same initial weights."""
    import keras

    from pipeline.modeling import regularize
    from pipeline.modeling.builders import build_tower
    from tests.support.reference import build_mlp, max_weight_difference, train_alone

    rates = {"hidden_1": 0.01, "hidden_2": 0.0, "output": 0.003}
    new = build_tower(
        BuilderRef(_mlp_config()), (64,), 10, rates, seed=42, name="m", task=CLASSIFICATION_TASK
    )
    keras.utils.set_random_seed(42)
    old = build_mlp(64, 10, [12, 8], "tanh", list(rates.values()), name="m")
    assert [layer.name for layer in new.layers] == [layer.name for layer in old.layers]
    assert max_weight_difference(old, new) == 0.0
    assert [regularize.layer_rate(layer) for layer in regularize.regularizable_layers(new)] == [
        pytest.approx(r) for r in rates.values()
    ]
    # And they train to the same weights (2 epochs on random data, as Keras trains them).
    rng = np.random.default_rng(0)
    split = prepared.Split(rng.random((64, 64), dtype=np.float32), rng.integers(0, 10, 64))
    for model in (old, new):
        init_tensorflow(42)
        train_alone(model, split, split, TrainConfig(learning_rate=0.01, batch_size=16, epochs=2),
                    seed=42, task=CLASSIFICATION_TASK)  # fmt: skip
    assert max_weight_difference(old, new) == 0.0
    assert max_weight_difference(old, build_mlp(64, 10, [12, 8], "tanh", [0.0] * 3)) > 0


def test_the_mlp_flattens_images():
    from pipeline.modeling.builders import build_base

    model = build_base(BuilderRef(_mlp_config()), (8, 8, 1), 10, task=CLASSIFICATION_TASK)
    assert [layer.name for layer in model.layers] == [
        "features", "flatten", "hidden_1", "hidden_2", "output",
    ]  # fmt: skip


def test_unnamed_layers_get_the_same_names_in_every_tower(tmp_path):
    from pipeline.modeling import regularize
    from pipeline.modeling.builders import build_tower, regularizable_names

    (tmp_path / "builders").mkdir()
    (tmp_path / "builders" / "plain.py").write_text(
        "import keras\n"
        "def build(input_shape, n_classes):\n"
        "    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Dense(4),\n"
        "                             keras.layers.Dense(n_classes, activation='softmax')])\n"
    )
    builder = BuilderRef.of(_mlp_config(builder="builders/plain.py:build"), tmp_path)
    names = regularizable_names(builder, (5,), 3, task=CLASSIFICATION_TASK)
    assert names == ["dense", "dense_1"]
    for seed in (1, 2):
        rates = dict.fromkeys(names, 0.1)
        model = build_tower(
            builder, (5,), 3, rates, seed=seed, name=f"t{seed}", task=CLASSIFICATION_TASK
        )
        assert [layer.name for layer in regularize.regularizable_layers(model)] == names
    assert not (tmp_path / "builders" / "__pycache__").exists()  # a DVC dependency stays clean


BAD_BUILDERS = {
    "missing.py:build": (None, r"no file builders/missing.py; put the builder in builders/"),
    "nofunc.py:build": ("import keras\ndef other(a, b): pass\n",
                        r"builders/nofunc.py has no function 'build'; it defines other"),
    "broken.py:build": ("import keras\ndef build(:\n",
                        r"importing builders/broken.py failed: SyntaxError"),
    "raises.py:build": ("def build(input_shape, n_classes):\n    raise ValueError('boom')\n",
                        r"build\(input_shape=\(8, 8, 1\), n_classes=10\) raised ValueError: boom"),
    "notmodel.py:build": ("def build(input_shape, n_classes):\n    return 3\n",
                          r"returned int, not a keras.Model"),
    "subclassed.py:build": (
        "import keras\n"
        "class Net(keras.Model):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.d = keras.layers.Dense(10, activation='softmax')\n"
        "    def call(self, x):\n"
        "        return self.d(keras.ops.reshape(x, (-1, 64)))\n"
        "def build(input_shape, n_classes):\n"
        "    return Net()\n",
        r"returned a subclassed model \(Net\), which Keras cannot clone to attach L2; write it "
        r"with the functional API",
    ),
    "logits.py:build": (
        "import keras\n"
        "def build(input_shape, n_classes):\n"
        "    inputs = keras.Input(shape=input_shape)\n"
        "    x = keras.layers.Flatten()(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(n_classes)(x))\n",
        r"outputs are not probabilities .* end with Dense\(n_classes, activation='softmax'\)",
    ),
    "classes.py:build": (
        "import keras\n"
        "def build(input_shape, n_classes):\n"
        "    inputs = keras.Input(shape=input_shape)\n"
        "    x = keras.layers.Flatten()(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(3, activation='softmax')(x))\n",
        r"output has shape \(3,\), the data has 10 classes",
    ),
}  # fmt: skip


@pytest.mark.parametrize("spec", list(BAD_BUILDERS))
def test_a_bad_builder_is_a_one_line_error(tmp_path, spec):
    from pipeline.modeling.builders import build_base

    source, message = BAD_BUILDERS[spec]
    (tmp_path / "builders").mkdir()
    file = spec.partition(":")[0]
    if source is not None:
        (tmp_path / "builders" / file).write_text(source)
    config = _mlp_config(builder=f"builders/{spec}")
    with pytest.raises(ConfigError, match=message) as info:
        build_base(BuilderRef.of(config, tmp_path), (8, 8, 1), 10, task=CLASSIFICATION_TASK)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"model.builder = 'builders/{spec}'")


def test_the_cnn_needs_images():
    from pipeline.modeling.builders import build_base

    with pytest.raises(ConfigError, match=r"'cnn' needs images .* set data.shape: image"):
        build_base(BuilderRef(_mlp_config(builder="cnn")), (64,), 10, task=CLASSIFICATION_TASK)


def test_the_shipped_example_builder_builds_and_takes_a_glob_mapping():
    from pipeline.modeling import regularize
    from pipeline.modeling.builders import build_tower, regularizable_names

    builder = BuilderRef.of(_mlp_config(builder="builders/example.py:small_convnet"), ROOT)
    names = regularizable_names(builder, (8, 8, 1), 10, task=CLASSIFICATION_TASK)
    assert names == ["conv_stem", "conv_separable", "dense_hidden", "dense_output"]
    rates = dict(resolve_rates({"conv_*": 1e-4, "dense_output": 1e-3}, names, "l2"))
    model = build_tower(builder, (8, 8, 1), 10, rates, seed=3, name="ex", task=CLASSIFICATION_TASK)
    assert len(model.losses) == 4  # stem kernel, depthwise + pointwise kernels, output kernel
    assert regularize.layer_rate(model.get_layer("dense_hidden")) == 0.0

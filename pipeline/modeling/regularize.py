"""The one rule for L2 on any Keras model: clone it once, setting each kernel's regularizer.

Keras ignores a regularizer assigned to a layer that already exists
(tensorflow/tensorflow#33635, keras-team/keras#8413), so the lab never does that. It builds
the network unregularized, then clones it with `keras.models.clone_model` and a
`clone_function` that passes each layer its rate through the layer's constructor, the route
Keras documents. The clone gets the built model's weights, so its initial weights are the
builder's, whatever the clone's own initializers would have drawn.

What carries L2, one rate per layer (Keras's term: rate * sum(kernel ** 2), no 1/2):

| layer | regularized weights |
|---|---|
| Dense, EinsumDense, Conv1D/2D/3D, Conv1D/2D/3DTranspose | kernel |
| SeparableConv1D/2D | depthwise and pointwise kernels, both at the layer's rate |
| DepthwiseConv1D/2D | depthwise kernel |
| Embedding | the embeddings table |

Biases never carry L2. Other layers (normalization, recurrent, ...) carry none. A rate of 0
attaches no regularizer, so an unregularized layer adds no term to `model.losses`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import keras
import numpy as np

from pipeline.core.errors import ConfigError

log = logging.getLogger(__name__)

# Checked in this order: SeparableConv and DepthwiseConv are not subclasses of Conv in
# Keras 3, and the transposed convolutions have their own base class.
_KERNELS: tuple[tuple[type, dict[str, str]], ...] = (
    (keras.layers.SeparableConv1D, {"depthwise_regularizer": "depthwise_kernel",
                                    "pointwise_regularizer": "pointwise_kernel"}),
    (keras.layers.SeparableConv2D, {"depthwise_regularizer": "depthwise_kernel",
                                    "pointwise_regularizer": "pointwise_kernel"}),
    (keras.layers.DepthwiseConv1D, {"depthwise_regularizer": "kernel"}),
    (keras.layers.DepthwiseConv2D, {"depthwise_regularizer": "kernel"}),
    (keras.layers.Embedding, {"embeddings_regularizer": "embeddings"}),
    (keras.layers.Dense, {"kernel_regularizer": "kernel"}),
    (keras.layers.EinsumDense, {"kernel_regularizer": "kernel"}),
    (keras.layers.Conv1D, {"kernel_regularizer": "kernel"}),
    (keras.layers.Conv2D, {"kernel_regularizer": "kernel"}),
    (keras.layers.Conv3D, {"kernel_regularizer": "kernel"}),
    (keras.layers.Conv1DTranspose, {"kernel_regularizer": "kernel"}),
    (keras.layers.Conv2DTranspose, {"kernel_regularizer": "kernel"}),
    (keras.layers.Conv3DTranspose, {"kernel_regularizer": "kernel"}),
)  # fmt: skip


def regularizer_attributes(layer: keras.layers.Layer) -> dict[str, str]:
    """Constructor argument -> attribute of the weight it regularizes; {} if none."""
    for kind, attributes in _KERNELS:
        if isinstance(layer, kind):
            return attributes
    return {}


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer in model order, descending into nested Sequential/Functional models."""
    found = []
    for layer in model.layers:
        found += _all_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return found


def regularizable_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers that take an L2 rate, in model order (the order of a list of rates)."""
    layers = [layer for layer in _all_layers(model) if regularizer_attributes(layer)]
    names = [layer.name for layer in layers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"model.builder: the model has several layers named {', '.join(duplicates)}; "
            f"give every layer a unique name (rates are set by layer name)"
        )
    return layers


def kernels(layer: keras.layers.Layer) -> list[keras.Variable]:
    """The weights of `layer` that its L2 rate applies to (never a bias)."""
    return [getattr(layer, attribute) for attribute in regularizer_attributes(layer).values()]


def layer_rate(layer: keras.layers.Layer) -> float:
    """The L2 rate on `layer`'s kernels (0 when it carries none)."""
    for argument in regularizer_attributes(layer):
        regularizer = getattr(layer, argument, None)
        if regularizer is not None:
            return float(regularizer.l2)
    return 0.0


def with_l2(model: keras.Model, rates: Mapping[str, float]) -> keras.Model:
    """A copy of `model` with the same weights and `rates[layer name]` on each layer's kernels.

    Every regularizable layer must be named in `rates`. Regularizers the builder set itself
    (on kernels or biases) are replaced, with a warning: the sweep's rates are the only L2.
    """
    layers = regularizable_layers(model)
    missing = [layer.name for layer in layers if layer.name not in rates]
    if missing:
        raise ValueError(f"no L2 rate for layer(s) {', '.join(missing)}")

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        attributes = regularizer_attributes(layer)
        if not attributes:
            return layer.__class__.from_config(config)
        rate = rates[layer.name]
        for argument in (*attributes, "bias_regularizer"):
            if config.get(argument) is not None:
                log.warning(
                    "warning: model.builder set %s on layer %r; the lab replaces it with the "
                    "sweep's rate (%g on kernels, none on biases)",
                    argument,
                    layer.name,
                    rate,
                )
            if argument in config:
                config[argument] = None
        for argument in attributes:
            config[argument] = keras.regularizers.L2(rate) if rate > 0 else None
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    clone.set_weights(model.get_weights())
    return clone


def kernel_sq_sums(model: keras.Model) -> dict[str, float]:
    """Sum of squared kernel weights per regularizable layer (biases excluded, as in L2)."""
    return {
        layer.name: sum(
            float(np.sum(np.square(keras.ops.convert_to_numpy(k), dtype=np.float64)))
            for k in kernels(layer)
        )
        for layer in regularizable_layers(model)
    }


def l2_penalty(model: keras.Model) -> float:
    """The L2 term Keras adds to the loss: sum over layers of rate * sum(kernel ** 2)."""
    sq_sums = kernel_sq_sums(model)
    return sum(layer_rate(layer) * sq_sums[layer.name] for layer in regularizable_layers(model))


def kernel_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """Each regularizable layer's kernel by layer name (a separable convolution's two kernels
    flattened and joined)."""
    arrays = {}
    for layer in regularizable_layers(model):
        values = [keras.ops.convert_to_numpy(k) for k in kernels(layer)]
        arrays[layer.name] = (
            values[0] if len(values) == 1 else np.concatenate([v.ravel() for v in values])
        )
    return arrays

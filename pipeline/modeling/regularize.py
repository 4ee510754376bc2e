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

Fine-tuning adds L2 toward the starting weights (L2-SP, Li et al. 2018): `l2_sp` * sum((w -
w0) ** 2) on the same kernels, w0 their values when the tower is built (the start model's),
in Keras's convention (no 1/2). A layer with both rates carries one regularizer, `TowardStart`,
whose term is Keras's L2 term plus that one. w0 lives in the regularizer only: a model is saved
through `saved_as_plain_network`, which puts Keras's own L2 (or none) in the file's config, so a
`.keras` file holds no copy of the start weights and loads without the lab's code.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence

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


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer in model order, descending into nested Sequential/Functional models."""
    found = []
    for layer in model.layers:
        found += all_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return found


def regularizable_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers that take an L2 rate, in model order (the order of a list of rates)."""
    layers = [layer for layer in all_layers(model) if regularizer_attributes(layer)]
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


class TowardStart(keras.regularizers.Regularizer):
    """`l2` * sum(w ** 2) + `l2_sp` * sum((w - start) ** 2): Keras's L2 term, computed as
    `keras.regularizers.L2` computes it, plus the pull toward the starting weights."""

    def __init__(self, l2: float, l2_sp: float, start: np.ndarray):
        self.l2 = float(l2)
        self.l2_sp = float(l2_sp)
        self.start = np.array(start, dtype=np.float32)  # a copy: training moves the weights

    def __call__(self, x):
        term = self.l2_sp * keras.ops.sum(keras.ops.square(x - self.start))
        if self.l2:
            term = self.l2 * keras.ops.sum(keras.ops.square(x)) + term
        return term

    def get_config(self):
        # Saving goes through saved_as_plain_network; a config here would carry w0.
        raise NotImplementedError("TowardStart is not serialised; see saved_as_plain_network")


# (source, what it carried) already said in this process: one line, not one per tower.
_warned: set[tuple[str, str]] = set()


def with_l2(
    model: keras.Model,
    rates: Mapping[str, float],
    sp_rates: Mapping[str, float] | None = None,
    source: str = "model.builder",
) -> keras.Model:
    """A copy of `model` with the same weights and `rates[layer name]` on each layer's kernels;
    `sp_rates[layer name]`, L2 toward the kernels' current values (fine-tuning).

    Every regularizable layer must be named in `rates`. Regularizers the model carried (on
    kernels or biases) are replaced, said in one warning line naming `source`: the sweep's
    rates are the only L2.
    """
    sp_rates = sp_rates or {}
    carried: list[str] = []
    layers = regularizable_layers(model)
    missing = [layer.name for layer in layers if layer.name not in rates]
    if missing:
        raise ValueError(f"no L2 rate for layer(s) {', '.join(missing)}")

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        attributes = regularizer_attributes(layer)
        if not attributes:
            return layer.__class__.from_config(config)
        rate, sp_rate = rates[layer.name], sp_rates.get(layer.name, 0.0)
        for argument in (*attributes, "bias_regularizer"):
            if config.get(argument) is not None:
                carried.append(f"{argument} on {layer.name!r}")
            if argument in config:
                config[argument] = None
        for argument, attribute in attributes.items():
            if sp_rate > 0:
                start = keras.ops.convert_to_numpy(getattr(layer, attribute))
                config[argument] = TowardStart(rate, sp_rate, start)
            else:
                config[argument] = keras.regularizers.L2(rate) if rate > 0 else None
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    clone.set_weights(model.get_weights())
    said = (source, ", ".join(carried))
    if carried and said not in _warned:
        _warned.add(said)
        log.warning(
            "warning: %s set %s; the lab replaces them with the sweep's rates (on kernels; "
            "none on biases)",
            source,
            said[1],
        )
    return clone


def freeze(model: keras.Model, names: Sequence[str]) -> None:
    """Keep layers `names` at their weights: not trained, no penalty in the loss (Keras sums
    the regularizers of trainable weights only), and a BatchNormalization among them uses its
    moving statistics in training too (Keras 3's rule for a frozen one)."""
    wanted = set(names)
    for layer in all_layers(model):
        if layer.name in wanted:
            layer.trainable = False


@contextlib.contextmanager
def saved_as_plain_network(model: keras.Model) -> Iterator[keras.Model]:
    """`model` whose layers' configs carry Keras's own L2 (the `l2` part) instead of
    `TowardStart`, for as long as it is being saved: the file has no start weights and needs
    no lab code. The penalties of the training graph are untouched (Keras gave each weight its
    regularizer when the layer was built)."""
    swapped = []
    for layer in regularizable_layers(model):
        for argument in regularizer_attributes(layer):
            regularizer = getattr(layer, argument, None)
            if isinstance(regularizer, TowardStart):
                plain = keras.regularizers.L2(regularizer.l2) if regularizer.l2 else None
                swapped.append((layer, argument, regularizer))
                setattr(layer, argument, plain)
    try:
        yield model
    finally:
        for layer, argument, regularizer in swapped:
            setattr(layer, argument, regularizer)


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


def squared_distances(model: keras.Model, start: Mapping[str, np.ndarray]) -> dict[str, float]:
    """sum((w - w0) ** 2) per layer of `start` (layer -> w0, as `kernel_arrays` gives a
    layer's kernels), in float64: the distance from the starting weights that `l2_sp` rates."""
    current = kernel_arrays(model)
    return {
        name: float(np.sum(np.square(current[name].astype(np.float64) - w0.astype(np.float64))))
        for name, w0 in start.items()
    }

"""The reference MLP, with each Dense kernel's rate given when it is created.

The sweep builds its models through builders.py and attaches L2 by cloning (regularize.py),
for any architecture; its `mlp` builder gives exactly this network's layers and initial
weights (tests/test_regularize.py), so this stays the reference for the tests and benchmark.

Keras's L2 term for a layer is `rate * sum(kernel ** 2)` (no 1/2); biases carry none.
A regularizer assigned to an already built layer is silently ignored
(tensorflow/tensorflow#33635), so rates are only ever passed to the constructor here.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from pipeline.config.entries import dense_layer_names


def build_mlp(
    n_features: int,
    n_classes: int,
    hidden_units: Sequence[int],
    activation: str,
    layer_rates: Sequence[float],
    name: str = "mlp",
) -> keras.Model:
    """An MLP `n_features -> hidden_units... -> n_classes` (softmax), one L2 rate per Dense layer.

    A rate of 0 attaches no regularizer at all, so an unregularized model has no penalty term.
    """
    layer_names = dense_layer_names(len(hidden_units))
    if len(layer_rates) != len(layer_names):
        raise ValueError(
            f"need {len(layer_names)} rates (one per Dense layer), got {len(layer_rates)}"
        )
    inputs = keras.Input(shape=(n_features,), name="features")
    x = inputs
    widths = [*hidden_units, n_classes]
    activations = [activation] * len(hidden_units) + ["softmax"]
    layers = zip(layer_names, widths, activations, layer_rates, strict=True)
    for layer_name, width, act, rate in layers:
        x = keras.layers.Dense(
            width,
            activation=act,
            kernel_regularizer=keras.regularizers.L2(rate) if rate > 0 else None,
            name=layer_name,
        )(x)
    return keras.Model(inputs, x, name=name)


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def layer_rate(layer: keras.layers.Dense) -> float:
    regularizer = layer.kernel_regularizer
    return float(regularizer.l2) if regularizer is not None else 0.0


def kernel_sq_sums(model: keras.Model) -> dict[str, float]:
    """Sum of squared kernel weights per Dense layer (biases excluded, as L2 excludes them)."""
    return {
        layer.name: float(np.sum(np.square(layer.kernel.numpy(), dtype=np.float64)))
        for layer in dense_layers(model)
    }


def l2_penalty(model: keras.Model) -> float:
    """The L2 term Keras adds to the loss: sum over layers of rate * sum(kernel ** 2)."""
    sq_sums = kernel_sq_sums(model)
    return sum(layer_rate(layer) * sq_sums[layer.name] for layer in dense_layers(model))

"""What a trained model is judged by: errors, cross-entropy, the L2 term, weight sizes, and
how far into tanh's curved range its hidden units are driven."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.core.contracts import NEAR_LINEAR_Z, SATURATED_Z
from pipeline.datasets.prepared import Split
from pipeline.modeling.regularize import kernel_arrays, kernel_sq_sums, l2_penalty

__all__ = ["kernel_arrays", "model_metrics", "predicted_classes", "split_metrics"]


def split_metrics(model: keras.Model, split: Split) -> tuple[float, float]:
    """(error, cross-entropy) of `model` on `split`; cross-entropy as Keras computes its loss."""
    # One forward pass: the splits are small, and `predict` would retrace per split.
    probabilities = model(split.features, training=False)
    error = float(np.mean(np.argmax(probabilities, axis=1) != split.labels))
    cross_entropy = keras.losses.sparse_categorical_crossentropy(split.labels, probabilities)
    return error, float(np.mean(cross_entropy))


def predicted_classes(model: keras.Model, split: Split) -> np.ndarray:
    """The class `model` predicts for each row of `split` (int16: a small file)."""
    return np.argmax(model(split.features, training=False), axis=1).astype(np.int16)


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def hidden_pre_activations(model: keras.Model, features: np.ndarray) -> dict[str, np.ndarray]:
    """Each hidden Dense layer's pre-activation z = x W + b, shape (rows, units), by layer name."""
    x = features.reshape(len(features), -1)  # the MLP flattens image inputs
    found: dict[str, np.ndarray] = {}
    for layer in dense_layers(model)[:-1]:  # the last Dense layer is the softmax output
        z = x @ layer.kernel.numpy() + layer.bias.numpy()
        found[layer.name] = z
        x = keras.ops.convert_to_numpy(layer.activation(z))
    return found


def activation_shares(model: keras.Model, features: np.ndarray) -> dict[str, float]:
    """Shares of hidden pre-activations with |z| < NEAR_LINEAR_Z, per layer and pooled, and the
    pooled share with |z| > SATURATED_Z, over every (row, unit) of `features`."""
    z_by_layer = hidden_pre_activations(model, features)
    shares = {
        f"near_linear_share_{name}": float(np.mean(np.abs(z) < NEAR_LINEAR_Z))
        for name, z in z_by_layer.items()
    }
    pooled = np.abs(np.concatenate([z.ravel() for z in z_by_layer.values()]))
    shares["near_linear_share"] = float(np.mean(pooled < NEAR_LINEAR_Z))
    shares["saturated_share"] = float(np.mean(pooled > SATURATED_Z))
    return shares


def model_metrics(
    model: keras.Model, splits: dict[str, Split], tanh_shares: bool = True
) -> dict[str, float]:
    """Final metrics of a trained model; names match the MLflow metrics and DVC metrics file.

    `tanh_shares`: add the near-linear and saturated shares, which follow the lab's MLP
    (a chain of Dense layers); other models have no such chain.
    """
    metrics: dict[str, float] = {}
    for name, split in splits.items():
        metrics[f"{name}_error"], metrics[f"{name}_xent"] = split_metrics(model, split)
    penalty = l2_penalty(model)
    metrics["l2_penalty"] = penalty
    # The objective that training minimised, at the final weights.
    metrics["train_loss"] = metrics["train_xent"] + penalty
    metrics["gen_gap"] = metrics["test_error"] - metrics["train_error"]
    for layer, value in kernel_sq_sums(model).items():
        metrics[f"sq_weights_{layer}"] = value
    metrics["sum_sq_weights"] = sum(kernel_sq_sums(model).values())
    # On the training inputs: the data the penalty shaped the weights for.
    if tanh_shares:
        metrics.update(activation_shares(model, splits["train"].features))
    return metrics

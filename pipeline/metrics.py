"""What a trained model is judged by: errors, cross-entropy, the L2 term and weight sizes."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.data import Split
from pipeline.model import kernel_sq_sums, l2_penalty


def split_metrics(model: keras.Model, split: Split) -> tuple[float, float]:
    """(error, cross-entropy) of `model` on `split`; cross-entropy as Keras computes its loss."""
    # One forward pass: the splits are small, and `predict` would retrace per split.
    probabilities = model(split.features, training=False)
    error = float(np.mean(np.argmax(probabilities, axis=1) != split.labels))
    cross_entropy = keras.losses.sparse_categorical_crossentropy(split.labels, probabilities)
    return error, float(np.mean(cross_entropy))


def model_metrics(model: keras.Model, splits: dict[str, Split]) -> dict[str, float]:
    """Final metrics of a trained model; names match the MLflow metrics and DVC metrics file."""
    metrics: dict[str, float] = {}
    for name, split in splits.items():
        metrics[f"{name}_error"], metrics[f"{name}_cross_entropy"] = split_metrics(model, split)
    penalty = l2_penalty(model)
    metrics["l2_penalty"] = penalty
    # The objective that training minimised, at the final weights.
    metrics["train_loss"] = metrics["train_cross_entropy"] + penalty
    metrics["generalization_gap"] = metrics["test_error"] - metrics["train_error"]
    for layer, value in kernel_sq_sums(model).items():
        metrics[f"sq_weights_{layer}"] = value
    metrics["sq_weights_total"] = sum(kernel_sq_sums(model).values())
    return metrics

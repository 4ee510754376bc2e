"""What a trained model is judged by: errors, cross-entropy, the L2 term, weight sizes, and
how far into tanh's curved range its hidden units are driven.

A regression model predicts the standardised target (one linear unit); its figures (RMSE,
MSE, MAE, R²) are computed after predictions and labels are put back into the target's units
(meta.json's target_mean and target_std), so they read as the quantity does.

A model that starts from a start model (fine-tuning) is also measured against its starting
weights: per layer with a start Σ(w - w0)² and ||w - w0|| / ||w0||, and the `l2_sp` term
they make. A saved model is the plain network (Keras's L2 only), so that term is computed
here from the entry's rates and the start model's kernels, and `l2_penalty` is the whole
regularization term of the loss, both parts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from pipeline.core.contracts import NEAR_LINEAR_Z, SATURATED_Z, PreparedMeta
from pipeline.core.task import task_named
from pipeline.datasets.prepared import Split
from pipeline.modeling.regularize import (
    kernel_arrays,
    kernel_sq_sums,
    l2_penalty,
    squared_distances,
)

__all__ = [
    "START_HEADLINE",
    "StartPoint",
    "kernel_arrays",
    "model_metrics",
    "predicted_classes",
    "predicted_values",
    "regression_split_metrics",
    "split_metrics",
    "start_kernels",
    "start_metrics",
    "start_points",
]

# A fine-tuned model's figures that metrics/<entry>.json carries beside the task's headline.
START_HEADLINE = ("l2_sp_penalty", "sum_sq_dist")


@dataclass(frozen=True)
class StartPoint:
    """Where an entry's models started: the start model's kernel (w0) per layer with a start,
    and the entry's `l2_sp` rate per layer (config.entries.Tuning.sp_rates)."""

    kernels: Mapping[str, np.ndarray]
    sp_rates: Mapping[str, float]


def start_kernels(builder, meta: PreparedMeta, seed: int, layers: Sequence[str]):
    """w0 of `layers` (the layers with a start): the kernels of the start network every tower
    began from (modeling/start.py), checked against the prepared data as `train` checks it."""
    from pipeline.modeling.start import start_network

    task = task_named(meta.task)
    network = start_network(builder, tuple(meta.input_shape), meta.n_outputs, task, seed)
    arrays = kernel_arrays(network.model)
    return {name: arrays[name] for name in layers}


def start_points(builder, meta: PreparedMeta, seed: int, record, entries) -> dict[str, StartPoint]:
    """Entry name -> its StartPoint, for the entries that start from the start model
    (`record`: models/sweep.json's core.contracts.SweepRecord); w0 read once for all."""
    tuned = [entry for entry in entries if entry.tuning.from_start]
    if not record.from_file or not tuned:
        return {}
    w0 = start_kernels(builder, meta, seed, record.with_start)
    return {entry.name: StartPoint(w0, dict(entry.tuning.sp_rates)) for entry in tuned}


def start_metrics(model: keras.Model, start: StartPoint) -> dict[str, float]:
    """`l2_sp_penalty` (Σ over layers of l2_sp * Σ(w - w0)², the term of the loss that pulls
    toward the start), `sq_dist_<layer>`, `rel_dist_<layer>` (||w - w0|| / ||w0||, NaN for a
    start kernel of zeros) and `sum_sq_dist`, over the kernels as L2 takes them."""
    distances = squared_distances(model, start.kernels)
    metrics = {
        "l2_sp_penalty": sum(start.sp_rates.get(n, 0.0) * d for n, d in distances.items())
    }
    metrics |= {f"sq_dist_{name}": value for name, value in distances.items()}
    for name, value in distances.items():
        norm = float(np.sqrt(np.sum(np.square(start.kernels[name], dtype=np.float64))))
        metrics[f"rel_dist_{name}"] = math.sqrt(value) / norm if norm > 0 else math.nan
    metrics["sum_sq_dist"] = sum(distances.values())
    return metrics


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


def predicted_values(model: keras.Model, split: Split, meta: PreparedMeta) -> np.ndarray:
    """What `model` predicts for each row of `split`, in the target's units (float64)."""
    output = keras.ops.convert_to_numpy(model(split.features, training=False))
    standardised = output.astype(np.float64).reshape(-1)
    return meta.in_target_units(standardised)


def regression_figures(targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """RMSE, MSE, MAE and R² (1 - residual over total sum of squares about the targets' own
    mean, as sklearn.metrics.r2_score) of `predictions` against `targets`, both in units."""
    residual = np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)
    mse = float(np.mean(residual**2))
    total = float(np.sum((targets - np.mean(targets)) ** 2))
    return {
        "rmse": float(np.sqrt(mse)),
        "mse": mse,
        "mae": float(np.mean(np.abs(residual))),
        "r2": 1.0 - float(np.sum(residual**2)) / total,
    }


def regression_split_metrics(
    model: keras.Model, split: Split, meta: PreparedMeta
) -> tuple[dict[str, float], float]:
    """The figures of `model` on `split` in target units, and its mean squared error on the
    standardised target (the data loss training minimised)."""
    predictions = predicted_values(model, split, meta)
    targets = meta.in_target_units(np.asarray(split.labels, np.float64))
    standardised = (predictions - targets) / meta.target_std
    return regression_figures(targets, predictions), float(np.mean(standardised**2))


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def hidden_pre_activations(model: keras.Model, features: np.ndarray) -> dict[str, np.ndarray]:
    """Each hidden Dense layer's pre-activation z = x W + b, shape (rows, units), by layer name."""
    x = features.reshape(len(features), -1)  # the MLP flattens image inputs
    found: dict[str, np.ndarray] = {}
    for layer in dense_layers(model)[:-1]:  # the last Dense layer is the output
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
    model: keras.Model,
    splits: dict[str, Split],
    tanh_shares: bool = True,
    *,
    meta: PreparedMeta,
    start: StartPoint | None = None,
) -> dict[str, float]:
    """Final metrics of a trained model; names match the MLflow metrics and DVC metrics file.

    `tanh_shares`: add the near-linear and saturated shares, which follow the lab's MLP
    (a chain of Dense layers); other models have no such chain. `meta`: the prepared data's,
    whose task says which figures (a regression's in target units, by its target scale).
    `start`: the model started from the start model (fine-tuning); its distances from it
    join the figures, and its `l2_sp` term the penalty.
    """
    metrics: dict[str, float] = {}
    regression = meta.is_regression
    data_losses = {}
    for name, split in splits.items():
        if regression:
            figures, data_losses[name] = regression_split_metrics(model, split, meta)
            metrics.update({f"{name}_{figure}": v for figure, v in figures.items()})
        else:
            metrics[f"{name}_error"], metrics[f"{name}_xent"] = split_metrics(model, split)
            data_losses[name] = metrics[f"{name}_xent"]
    task = task_named(meta.task)
    from_start = start_metrics(model, start) if start is not None else {}
    # The loaded model carries Keras's L2 only; the pull toward the start is added back.
    penalty = l2_penalty(model)
    if from_start:
        penalty += from_start["l2_sp_penalty"]
    metrics["l2_penalty"] = penalty
    # The objective that training minimised, at the final weights.
    metrics["train_loss"] = data_losses["train"] + penalty
    metrics["gen_gap"] = metrics[task.test_figure] - metrics[task.train_figure]
    for layer, value in kernel_sq_sums(model).items():
        metrics[f"sq_weights_{layer}"] = value
    metrics["sum_sq_weights"] = sum(kernel_sq_sums(model).values())
    metrics |= from_start
    # On the training inputs: the data the penalty shaped the weights for.
    if tanh_shares:
        metrics.update(activation_shares(model, splits["train"].features))
    return metrics

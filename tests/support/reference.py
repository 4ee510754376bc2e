"""Test support for the modeling layer: the references the sweep's one training path is
checked against, and helpers no production path calls.

`train_alone`: one model trained by itself, with Keras's own Adam or AdamW, compiled loss and
metrics, as a process training only that model would: a classifier on
`SparseCategoricalCrossentropy`, a regression on `MeanSquaredError` against the standardised
target (labels (rows,) float32, outputs (rows, 1)). Every tower of the fused sweep equals
it bit for bit (test_towers.py, test_own_towers.py, test_compute.py, test_refit_training.py);
the benchmark (benchmarks/tasks.py) times it as the baseline. `build_mlp`: the MLP built
layer by layer with each rate given to the constructor, the reference the `mlp` builder's
networks equal (test_regularize.py). `fit_tower_groups`: `fit_towers` once per group, one
after the other, in this process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from pipeline.config.entries import dense_layer_names
from pipeline.config.schema import TrainConfig
from pipeline.core.epoch_metrics import (
    EpochSink,
    classification_epoch_metrics,
    regression_epoch_metrics,
)
from pipeline.core.errors import LabError
from pipeline.core.task import Task
from pipeline.datasets.prepared import Split
from pipeline.modeling.objective import CLASSIFIER
from pipeline.modeling.towers import FitOutcome, Tower, fit_towers, training_dataset

# epoch (1-based), the model's task's epoch metrics for that epoch
ModelEpochSink = Callable[[int, dict[str, float]], None]


class TrainingDiverged(LabError):
    """The loss became NaN or infinite."""


def optimizer(learning_rate: float, weight_decay: float) -> keras.optimizers.Optimizer:
    """Adam, or AdamW when the entry asks for decoupled weight decay (kernels only)."""
    if weight_decay == 0:
        return keras.optimizers.Adam(learning_rate=learning_rate)
    adamw = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    adamw.exclude_from_weight_decay(var_names=["bias"])  # as with L2, biases are not shrunk
    return adamw


def validation_figures(
    model: keras.Model, val: Split, task: Task
) -> Callable[[], tuple[float, float]]:
    """(mean cross-entropy, accuracy), or for a regression (mean squared error, the same), of
    `model`'s current weights on `val`: Keras's own validation figures in `fit`, from one
    traced forward pass."""
    features, labels = tf.constant(val.features), tf.constant(val.labels)

    @tf.function
    def compute():
        outputs = model(features, training=False)
        if task.is_regression:
            squared_error = tf.reduce_mean(keras.losses.mean_squared_error(labels, outputs))
            return squared_error, squared_error
        cross_entropy = keras.losses.sparse_categorical_crossentropy(labels, outputs)
        correct = keras.metrics.sparse_categorical_accuracy(labels, outputs)
        return tf.reduce_mean(cross_entropy), tf.reduce_mean(correct)

    def figures() -> tuple[float, float]:
        data_loss, accuracy = compute()
        return float(data_loss), float(accuracy)

    return figures


class EpochReporter(keras.callbacks.Callback):
    """Each epoch's Keras logs and validation figures as the task's epoch metrics, to the
    sinks; stops at once if the loss diverges."""

    def __init__(
        self,
        entry: str,
        sinks: Sequence[ModelEpochSink],
        val: Split,
        task: Task,
        target_std: float = 1.0,
    ):
        super().__init__()
        self.entry, self.sinks, self.val = entry, list(sinks), val
        self.task, self.target_std = task, target_std
        self._validate = None

    def on_train_begin(self, logs=None):
        self._validate = validation_figures(self.model, self.val, self.task)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        val_loss, val_figure = self._validate()
        # Keras's loss is the data loss plus the L2 term: the penalty is their difference.
        penalty = logs["loss"] - logs["data_loss"]
        if self.task.is_regression:
            # RMSE: the square root of Keras's MeanSquaredError metric, in the target's units.
            metrics = regression_epoch_metrics(
                logs["data_loss"], logs["data_loss"], penalty, val_loss, val_figure,
                self.target_std,
            )  # fmt: skip
        else:
            metrics = classification_epoch_metrics(
                logs["data_loss"], logs["accuracy"], penalty, val_loss, val_figure
            )
        metrics["loss"] = logs["loss"]  # Keras's own sum, as the reference reports it
        if not math.isfinite(metrics["loss"]):
            raise TrainingDiverged(
                f"entry {self.entry!r}: loss became {metrics['loss']} at epoch {epoch + 1}; "
                f"lower train.learning_rate or the entry's L2 rate"
            )
        for sink in self.sinks:
            sink(epoch + 1, metrics)


def train_alone(
    model: keras.Model,
    train: Split,
    val: Split,
    settings: TrainConfig,
    *,
    seed: int,
    entry: str = "alone",
    weight_decay: float = 0.0,
    sinks: Sequence[ModelEpochSink] = (),
    task: Task,
    target_std: float = 1.0,
) -> float:
    """Train `model` in place by itself; returns the wall time of `fit` in seconds.
    `target_std`: a regression's training-row standard deviation (its RMSE in units)."""
    steps_per_epoch = math.ceil(len(train.labels) / settings.batch_size)
    if task.is_regression:
        # The same mean squared error as the loss, but without the L2 term.
        loss, metrics = keras.losses.MeanSquaredError(), [
            keras.metrics.MeanSquaredError(name="data_loss")
        ]
    else:
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(), [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            # The same cross-entropy as the loss but without the L2 term.
            keras.metrics.SparseCategoricalCrossentropy(name="data_loss"),
        ]
    model.compile(
        optimizer=optimizer(settings.learning_rate, weight_decay),
        loss=loss,
        metrics=metrics,
        steps_per_execution=steps_per_epoch,
    )
    started = time.perf_counter()
    model.fit(
        training_dataset(train, settings.batch_size, seed),
        epochs=settings.epochs,
        callbacks=[EpochReporter(entry, sinks, val, task, target_std)],
        shuffle=False,  # the dataset shuffles itself, with a seed
        verbose=0,
    )
    return time.perf_counter() - started


def fit_tower_groups(
    groups: Sequence[tuple[Sequence[Tower], Split] | tuple[Sequence[Tower], Split, Split]],
    val: Split,
    settings: TrainConfig,
    *,
    sinks: Sequence[EpochSink],
) -> FitOutcome:
    """`fit_towers` once per group of towers that share a training set, one after the other;
    a group may carry its own validation split as a third item (a fold's held-out rows).
    Classification's objective: the tower tests train digits."""
    total = FitOutcome(seconds=0.0)
    for towers, train, *own_val in groups:
        outcome = fit_towers(
            towers,
            train,
            own_val[0] if own_val else val,
            settings,
            sinks=sinks,
            objective=CLASSIFIER,
        )
        total.seconds += outcome.seconds
        total.diverged_at_epoch.update(outcome.diverged_at_epoch)
    return total


def max_weight_difference(a: keras.Model, b: keras.Model) -> float:
    """The largest |difference| between two models' corresponding weights."""
    pairs = zip(a.get_weights(), b.get_weights(), strict=True)
    return max(float(np.max(np.abs(x - y))) for x, y in pairs)


def build_mlp(
    n_features: int,
    n_classes: int,
    hidden_units: Sequence[int],
    activation: str,
    layer_rates: Sequence[float],
    name: str = "mlp",
    output_activation: str | None = "softmax",
) -> keras.Model:
    """An MLP `n_features -> hidden_units... -> n_classes` (softmax; a regression's: one
    unit, `output_activation=None`), one L2 rate per Dense layer given to its constructor (a
    rate of 0 attaches none). A regularizer assigned to an already built layer is silently
    ignored (tensorflow/tensorflow#33635)."""
    layer_names = dense_layer_names(len(hidden_units))
    if len(layer_rates) != len(layer_names):
        raise ValueError(
            f"need {len(layer_names)} rates (one per Dense layer), got {len(layer_rates)}"
        )
    x = inputs = keras.Input(shape=(n_features,), name="features")
    widths = [*hidden_units, n_classes]
    activations = [activation] * len(hidden_units) + [output_activation]
    for layer_name, width, act, rate in zip(
        layer_names, widths, activations, layer_rates, strict=True
    ):
        x = keras.layers.Dense(
            width,
            activation=act,
            kernel_regularizer=keras.regularizers.L2(rate) if rate > 0 else None,
            name=layer_name,
        )(x)
    return keras.Model(inputs, x, name=name)

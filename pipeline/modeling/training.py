"""Training one model alone: the reference that a tower of the fused sweep equals bit for bit.

The sweep trains its models together (towers.py); this is how one model trains by itself,
kept for the exactness test, the benchmark's baseline, and the input pipeline both share.

Per-epoch figures follow Keras: `train_*` are running means over the epoch's batches,
`val_*` are computed on the epoch's final weights. `l2_penalty` is `loss - data_loss`, the
mean regularization term over the same batches.

Where the time goes (see benchmarks/): with 300 rows and batch 32 an epoch is ten ~1 ms
steps, so per-call overhead dominates, not arithmetic. `fit` therefore runs a whole epoch per
call (`steps_per_execution`) from a cached dataset, and validation is one compiled forward
pass over the whole split instead of Keras's `evaluate`, which cost more than the epoch's
training itself (~25 ms vs ~16 ms on 2 cores).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from pipeline.core.errors import LabError
from pipeline.datasets.prepared import Split

EpochSink = Callable[[int, dict[str, float]], None]


class TrainingDiverged(LabError):
    """The loss became NaN or infinite."""


def training_dataset(split: Split, batch_size: int, seed: int) -> tf.data.Dataset:
    # cache + reshuffle + prefetch: the batches come from memory, in a new (seeded,
    # repeatable) order each epoch, prepared while the previous step runs.
    return (
        tf.data.Dataset.from_tensor_slices((split.features, split.labels))
        .cache()
        .shuffle(len(split.labels), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def optimizer(learning_rate: float, weight_decay: float) -> keras.optimizers.Optimizer:
    """Adam, or AdamW when the entry asks for decoupled weight decay (kernels only)."""
    if weight_decay == 0:
        return keras.optimizers.Adam(learning_rate=learning_rate)
    adamw = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    # As with the L2 rule in mlp.py, biases are not shrunk.
    adamw.exclude_from_weight_decay(var_names=["bias"])
    return adamw


def compile_model(
    model: keras.Model, learning_rate: float, steps_per_execution: int, weight_decay: float = 0.0
) -> None:
    model.compile(
        optimizer=optimizer(learning_rate, weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            # The same cross-entropy as the loss but without the L2 term.
            keras.metrics.SparseCategoricalCrossentropy(name="data_loss"),
        ],
        steps_per_execution=steps_per_execution,
    )


def epoch_metrics(logs: dict[str, float]) -> dict[str, float]:
    """Keras's epoch logs, renamed to the lab's metric names."""
    return {
        "loss": logs["loss"],
        "data_loss": logs["data_loss"],
        "l2_penalty": logs["loss"] - logs["data_loss"],
        "train_error": 1.0 - logs["accuracy"],
        "val_data_loss": logs["val_data_loss"],
        "val_error": 1.0 - logs["val_accuracy"],
    }


def validation_metrics(model: keras.Model, val: Split) -> Callable[[], dict[str, float]]:
    """A function giving `val_data_loss` and `val_accuracy` of `model`'s current weights.

    The same figures as Keras's validation in `fit` (the mean sparse cross-entropy and
    accuracy over the split, without the L2 term), from one traced forward pass.
    """
    features = tf.constant(val.features)
    labels = tf.constant(val.labels)

    @tf.function
    def compute() -> tuple[tf.Tensor, tf.Tensor]:
        probabilities = model(features, training=False)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        correct = keras.metrics.sparse_categorical_accuracy(labels, probabilities)
        return tf.reduce_mean(cross_entropy), tf.reduce_mean(correct)

    def metrics() -> dict[str, float]:
        data_loss, accuracy = compute()
        return {"val_data_loss": float(data_loss), "val_accuracy": float(accuracy)}

    return metrics


class EpochReporter(keras.callbacks.Callback):
    """Adds validation figures to each epoch's logs, hands the epoch's metrics to the sinks,
    and stops at once if the loss diverges."""

    def __init__(self, entry: str, sinks: list[EpochSink], val: Split):
        super().__init__()
        self.entry = entry
        self.sinks = sinks
        self.val = val
        self._validate: Callable[[], dict[str, float]] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._validate = validation_metrics(self.model, self.val)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if self._validate is not None:
            logs.update(self._validate())
        metrics = epoch_metrics(logs)
        if not math.isfinite(metrics["loss"]):
            raise TrainingDiverged(
                f"entry {self.entry!r}: loss became {metrics['loss']} at epoch {epoch + 1}; "
                f"lower train.learning_rate or the entry's L2 rate"
            )
        for sink in self.sinks:
            sink(epoch + 1, metrics)


def fit(
    model: keras.Model,
    train: Split,
    val: Split,
    *,
    entry: str,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    seed: int,
    sinks: list[EpochSink],
    weight_decay: float = 0.0,
) -> float:
    """Train `model` in place; returns the wall time of `fit` in seconds."""
    steps_per_epoch = math.ceil(len(train.labels) / batch_size)
    # One host round-trip per epoch instead of one per batch: small models are
    # dominated by per-step Python overhead, not by arithmetic.
    compile_model(model, learning_rate, steps_per_epoch, weight_decay)
    reporter = EpochReporter(entry, list(sinks), val)
    started = time.perf_counter()
    model.fit(
        training_dataset(train, batch_size, seed),
        epochs=epochs,
        callbacks=[reporter],
        shuffle=False,  # the dataset shuffles itself, with a seed
        verbose=0,
    )
    return time.perf_counter() - started

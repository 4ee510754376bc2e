"""The per-epoch metrics of the classification task: their names, in one place.

These names are `history.csv`'s columns (after `epoch`, in this order) and each model run's
MLflow metric keys. `train_*` figures are running means over the epoch's batches, as Keras
reports them; `val_*` are computed on the epoch's final weights; `l2_penalty` is the mean
L2 term over the same batches, so `loss = data_loss + l2_penalty`.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.core.task import CLASSIFICATION_TASK

EPOCH_METRICS = CLASSIFICATION_TASK.epoch_metrics  # each task's: core/task.py

# What receives each epoch: epoch (1-based), tower name -> its EPOCH_METRICS for that epoch.
EpochSink = Callable[[int, dict[str, dict[str, float]]], None]


def classification_epoch_metrics(
    data_loss: float, accuracy: float, l2_penalty: float, val_data_loss: float, val_accuracy: float
) -> dict[str, float]:
    """One tower's epoch as EPOCH_METRICS: cross-entropies, the L2 term and error rates."""
    values = (data_loss + l2_penalty, data_loss, l2_penalty, 1.0 - accuracy)
    values += (val_data_loss, 1.0 - val_accuracy)
    return dict(zip(EPOCH_METRICS, values, strict=True))

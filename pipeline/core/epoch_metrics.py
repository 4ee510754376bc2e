"""The per-epoch metrics of each task, from one tower's epoch figures.

Their names are the task's `epoch_metrics` (core/task.py): `history.csv`'s columns (after
`epoch`, in that order) and each model run's MLflow metric keys. `train_*` figures are running
means over the epoch's batches, as Keras reports them; `val_*` are computed on the epoch's
final weights; `l2_penalty` is the mean L2 term over the same batches, so
`loss = data_loss + l2_penalty`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pipeline.core.task import CLASSIFICATION_TASK, REGRESSION_TASK

# What receives each epoch: epoch (1-based), tower name -> its task's epoch metrics.
EpochSink = Callable[[int, dict[str, dict[str, float]]], None]


def classification_epoch_metrics(
    data_loss: float, accuracy: float, l2_penalty: float, val_data_loss: float, val_accuracy: float
) -> dict[str, float]:
    """One tower's epoch: cross-entropies, the L2 term and error rates."""
    values = (data_loss + l2_penalty, data_loss, l2_penalty, 1.0 - accuracy)
    values += (val_data_loss, 1.0 - val_accuracy)
    return dict(zip(CLASSIFICATION_TASK.epoch_metrics, values, strict=True))


def regression_epoch_metrics(
    data_loss: float,
    squared_error: float,
    l2_penalty: float,
    val_data_loss: float,
    val_squared_error: float,
    target_std: float,
) -> dict[str, float]:
    """One tower's epoch: the losses on the standardised target (mean squared errors, the L2
    term), and the RMSEs in the target's units (`target_std`: the training rows' standard
    deviation, which the standardisation divided by)."""
    values = (data_loss + l2_penalty, data_loss, l2_penalty, _rmse(squared_error, target_std))
    values += (val_data_loss, _rmse(val_squared_error, target_std))
    return dict(zip(REGRESSION_TASK.epoch_metrics, values, strict=True))


def _rmse(mean_squared_error: float, target_std: float) -> float:
    # NaN and infinity pass through (math.sqrt keeps them): they mark a diverged tower.
    return math.sqrt(mean_squared_error) * target_std

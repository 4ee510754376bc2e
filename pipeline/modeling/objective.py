"""What a tower minimises and what its epochs report, per task (core/task.py).

Classification: softmax outputs against class indices, Keras's sparse cross-entropy, and the
share of rows predicted right. Regression: one linear output (rows, 1) against the
standardised target (rows,), Keras's mean squared error, and per row the squared error; its
RMSE is reported in the target's units. Both losses are the loss objects Keras compiles for
a model trained alone (tests/support/reference.py), so the towers stay bit-identical to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from pipeline.core.epoch_metrics import classification_epoch_metrics, regression_epoch_metrics
from pipeline.core.task import CLASSIFICATION_TASK, Task


@dataclass(frozen=True)
class Objective:
    task: Task
    # Regression: the training rows' target standard deviation, which turns an RMSE on the
    # standardised scale into the target's units.
    target_std: float = 1.0

    def loss(self) -> keras.losses.Loss:
        """A new loss object, as `compile(loss=...)` is given for a model trained alone."""
        if self.task.is_regression:
            return keras.losses.MeanSquaredError()
        return keras.losses.SparseCategoricalCrossentropy()

    def row_figures(self, labels, outputs):
        """Per row: (its data loss, the figure kept beside it: 1 if predicted right, or the
        squared error). Keras's own functions, which shape labels (rows,) against outputs
        (rows, 1) as its loss object does: the squared error per row, not a (rows, rows)
        broadcast."""
        if self.task.is_regression:
            squared_error = keras.losses.mean_squared_error(labels, outputs)
            return squared_error, squared_error
        cross_entropy = keras.losses.sparse_categorical_crossentropy(labels, outputs)
        return cross_entropy, keras.metrics.sparse_categorical_accuracy(labels, outputs)

    def epoch_metrics(
        self,
        data_loss: float,
        figure: float,
        penalty: float,
        val_data_loss: float,
        val_figure: float,
    ) -> dict[str, float]:
        """One tower's epoch as the task's epoch metrics, from the epoch's means."""
        if self.task.is_regression:
            return regression_epoch_metrics(
                data_loss, figure, penalty, val_data_loss, val_figure, self.target_std
            )
        return classification_epoch_metrics(data_loss, figure, penalty, val_data_loss, val_figure)


CLASSIFIER = Objective(CLASSIFICATION_TASK)

"""The towers side by side as one Keras model, trained on the sum of their losses, with each
tower's epoch figures kept in one metric (why this is each model's own training:
towers.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import tensorflow as tf

from pipeline.modeling.objective import Objective


@dataclass(frozen=True)
class Tower:
    """What a tower needs besides its model: its seed (batch order) and weight decay."""

    model: keras.Model
    seed: int
    weight_decay: float


# The middle figure: accuracy (classification) or squared error (regression).
FIGURES = ("data_loss", "accuracy|squared_error", "l2_penalty")


class PerTowerMeans(keras.metrics.Metric):
    """Per tower, the epoch's running means of the data loss, accuracy or squared error, and
    the L2 term, as one [towers, figures] tensor.

    The same sums as Keras's `Mean` metrics of a model trained alone (per-sample values
    summed, the penalty weighted by batch size), in one variable: three metric objects per
    tower cost a variable update each per step and a host read each per epoch.
    """

    def __init__(self, n_towers: int, name: str = "tower_means"):
        super().__init__(name=name)
        self.totals = self.add_variable(
            shape=(n_towers, len(FIGURES)), initializer="zeros", name="totals"
        )
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, sums, batch_size):
        self.totals.assign_add(sums)
        self.count.assign_add(batch_size)

    def reset_state(self):
        self.totals.assign(tf.zeros_like(self.totals))
        self.count.assign(0.0)

    def result(self):
        return tf.math.divide_no_nan(self.totals, self.count)


class FusedGraph(keras.Model):
    """One functional model whose outputs are the towers' outputs, trained on the sum of the
    towers' losses; besides it keeps each tower's epoch figures (PerTowerMeans).

    The loss is built here rather than by `compile(loss=[...])`: Keras gives each output its
    own loss object and `Mean` tracker, whose variables are created while the first step is
    traced, which makes TensorFlow trace the whole fused step a second time (measured: half
    of the first epoch). The sum below has the terms Keras sums for a model alone (its data
    loss, cross-entropy or mean squared error, through the same kind of loss object, then
    each regularization term), so each tower's gradient is the one it has alone, bit for bit.
    """

    def __init__(
        self,
        inputs,
        outputs,
        towers: Sequence[keras.Model],
        objective: Objective,
        **kwargs,
    ):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.tower_models = list(towers)
        self.tower_means = PerTowerMeans(len(towers))
        self.objective = objective
        # The task's loss object in place of the compiled one (cross-entropy or MSE).
        self.data_loss = objective.loss()

    @property
    def metrics(self):
        return [*super().metrics, self.tower_means]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # With a single tower Keras hands over one tensor, not a one-element list.
        y, y_pred = tf.nest.flatten(y), tf.nest.flatten(y_pred)
        batch = tf.cast(tf.shape(y[0])[0], "float32")
        terms, sums = [], []
        for tower, labels, outputs in zip(self.tower_models, y, y_pred, strict=True):
            # Keras's terms for this model alone (Trainer.compute_loss): the compiled loss,
            # then each regularization loss summed on its own.
            terms.append(self.data_loss(labels, outputs))
            penalties = [keras.ops.sum(loss) for loss in tower.losses]
            terms.extend(penalties)
            data_loss, figure = self.objective.row_figures(labels, outputs)
            # As summed before the loss was built here: history.csv's bytes stay the same.
            penalty = tf.add_n(tower.losses) if tower.losses else tf.constant(0.0)
            sums.append(
                tf.stack([tf.reduce_sum(data_loss), tf.reduce_sum(figure), penalty * batch])
            )
        self.tower_means.update_state(tf.stack(sums), batch)
        return keras.ops.sum(terms)


def tower_graph(
    towers: Sequence[Tower], input_shape: tuple[int, ...], objective: Objective
) -> FusedGraph:
    """The towers side by side: one input per distinct seed, one output per tower."""
    seeds = list(dict.fromkeys(t.seed for t in towers))
    inputs = {seed: keras.Input(shape=input_shape, name=f"features_seed{seed}") for seed in seeds}
    outputs = [t.model(inputs[t.seed]) for t in towers]
    models = [t.model for t in towers]
    return FusedGraph([inputs[s] for s in seeds], outputs, models, objective, name="towers")

"""One optimizer for all the towers of a graph: Adam, with each tower's own AdamW decay.

Its update step overrides Keras's private `_backend_update_step` and `_apply_weight_decay`
(pipeline/core/private_apis.py lists every private use).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops


class PerTowerAdamW(keras.optimizers.Adam):
    """Adam with each kernel's own decoupled weight decay: AdamW's rule, per tower, and
    Adam's update made once for all the towers' weights.

    Keras gives an optimizer one `weight_decay`; the towers need their own (0 for plain Adam).
    The decay step below is the TensorFlow backend's AdamW step, `w -= w * decay * lr` in the
    variable's dtype before Adam's update, applied to the kernels that `decays` names.
    Measured with 40 default MLPs, the flat update cut the first epoch from 0.45 to 0.31 s
    per tower; later epochs cost the same.
    """

    def __init__(self, learning_rate: float, decays: Sequence[tuple[keras.Variable, float]]):
        super().__init__(learning_rate=learning_rate)
        self._decay_by_key = {self._var_key(v): d for v, d in decays if d > 0}

    def build(self, var_list):
        """Adam's two moments as one flat vector each, over every weight of every tower,
        instead of two slots per weight (see `_backend_update_step`)."""
        if self.built:
            return
        # The base optimizer's build (step counter, weight indices), not Adam's slots.
        super(keras.optimizers.Adam, self).build(var_list)
        self._sizes = [math.prod(v.shape) for v in var_list]
        self._flat_momentum = self.add_variable((sum(self._sizes),), name="momentum")
        self._flat_velocity = self.add_variable((sum(self._sizes),), name="velocity")

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """Keras's Adam step (keras/src/optimizers/adam.py, amsgrad off) on all weights at
        once: the gradients concatenated, the moments and the step computed on the flat
        vectors, the step split back onto each weight.

        Every number gets the same operations as in Keras's per-weight step (elementwise,
        in the same order; concatenating and splitting only copy), so each weight ends
        with the same bits (tests/test_towers.py). The graph has a dozen ops for the whole
        update instead of a dozen per weight, six weights per tower.
        """
        if len(grads) != len(self._sizes):
            raise ValueError(f"expected {len(self._sizes)} gradients, got {len(grads)}")
        dtype = self._flat_momentum.dtype
        lr = ops.cast(learning_rate, dtype)
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), local_step)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        gradient = tf.concat([tf.reshape(ops.cast(g, dtype), [-1]) for g in grads], axis=0)
        m, v = self._flat_momentum, self._flat_velocity
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        step = ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon))
        for variable, piece in zip(trainable_variables, tf.split(step, self._sizes), strict=True):
            self.assign_sub(variable, tf.reshape(piece, variable.shape))

    def _apply_weight_decay(self, variables):
        for variable in variables:
            decay = self._decay_by_key.get(self._var_key(variable))
            if decay is None:
                continue
            tf_variable = variable.value if isinstance(variable, keras.Variable) else variable
            lr = tf.cast(self.learning_rate, tf_variable.dtype)
            wd = tf.cast(decay, tf_variable.dtype)
            tf_variable.assign_sub(tf_variable * wd * lr)


def decayed_kernels(model: keras.Model) -> list[keras.Variable]:
    """The weights AdamW decays in this lab: every trainable weight but the biases."""
    return [v for v in model.trainable_weights if not v.path.endswith("bias")]

"""Many models trained at once: each is a tower of one Keras graph, and one `fit` trains all.

Why this is exactly each model's own training: the fused loss is the sum of the towers'
losses (the task's data loss, cross-entropy or mean squared error, plus each tower's own L2
terms). A tower's weights reach the sum only
through its own loss, so their gradient is that loss's gradient, bit for bit (the sum passes
a gradient of exactly 1 to each term). Adam and AdamW update each weight from its own
gradient alone, so one optimizer over all towers makes each tower's update its own. Towers of
different seeds get their own initialisation and their own shuffled input stream, built as
a model trained alone would build them. `tests/test_towers.py` checks the final weights
against models trained alone: max |difference| == 0.

Why it is faster: with ~10 batches per epoch of small MLPs, per-step overhead dominates;
one step that trains ten towers costs little more than one that trains one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from pipeline.config.schema import TrainConfig
from pipeline.core.epoch_metrics import EpochSink
from pipeline.datasets.prepared import Split
from pipeline.modeling.graph import FusedGraph, Tower, tower_graph
from pipeline.modeling.objective import Objective
from pipeline.modeling.optimizer import PerTowerAdamW, decayed_kernels


@dataclass
class FitOutcome:
    seconds: float
    # tower name -> the first epoch whose loss was NaN or infinite (absent: never)
    diverged_at_epoch: dict[str, int] = field(default_factory=dict)


def training_dataset(split: Split, batch_size: int, seed: int) -> tf.data.Dataset:
    """The batches a model trained alone with `seed` sees: cached, reshuffled each epoch with
    the seed (repeatable), prepared while the previous step runs."""
    return (
        tf.data.Dataset.from_tensor_slices((split.features, split.labels))
        .cache()
        .shuffle(len(split.labels), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def fused_dataset(towers: Sequence[Tower], train: Split, batch_size: int) -> tf.data.Dataset:
    """Per seed, the stream a model trained alone with that seed would see; zipped."""
    seeds = list(dict.fromkeys(t.seed for t in towers))
    streams = []
    for seed in seeds:
        # The shuffle's seed pair is fixed when the dataset is made, from the global seed
        # and the op seed: the same pair as in a process that trains this seed alone.
        keras.utils.set_random_seed(seed)
        streams.append(training_dataset(train, batch_size, seed))
    column = {seed: i for i, seed in enumerate(seeds)}

    def arrange(*batches):
        features = tuple(batch[0] for batch in batches)
        labels = tuple(batches[column[t.seed]][1] for t in towers)
        return features, labels

    return tf.data.Dataset.zip(tuple(streams)).map(arrange)


def validation_figures(
    graph: FusedGraph, n_inputs: int, val: Split
) -> Callable[[], list[tuple[float, float]]]:
    """Per tower, the mean data loss and accuracy (or squared error) of the current weights
    on `val`, in one forward pass."""
    features = tf.constant(val.features)
    labels = tf.constant(val.labels)
    objective = graph.objective

    @tf.function
    def compute():
        outputs = tf.nest.flatten(graph([features] * n_inputs, training=False))
        return [
            tuple(tf.reduce_mean(rows) for rows in objective.row_figures(labels, p))
            for p in outputs
        ]

    def figures() -> list[tuple[float, float]]:
        return [(float(loss), float(figure)) for loss, figure in compute()]

    return figures


class _EpochCollector(keras.callbacks.Callback):
    """Turns each epoch's logs into per-tower metrics, notes divergence, feeds the sinks."""

    def __init__(self, names: list[str], n_inputs: int, val: Split, sinks, outcome: FitOutcome):
        super().__init__()
        self.names = names
        self.n_inputs = n_inputs
        self.val = val
        self.sinks = sinks
        self.outcome = outcome
        self._validate = None

    def on_train_begin(self, logs=None):
        self._validate = validation_figures(self.model, self.n_inputs, self.val)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        per_tower = {}
        means = np.asarray(logs["tower_means"], dtype=np.float64)
        objective = self.model.objective
        for i, (name, val) in enumerate(zip(self.names, self._validate(), strict=True)):
            if name in self.outcome.diverged_at_epoch:
                continue
            data_loss, figure, penalty = (float(v) for v in means[i])
            metrics = objective.epoch_metrics(data_loss, figure, penalty, *val)
            if not all(math.isfinite(v) for v in metrics.values()):
                self.outcome.diverged_at_epoch[name] = epoch + 1
                continue
            per_tower[name] = metrics
        for sink in self.sinks:
            sink(epoch + 1, per_tower)


def fit_towers(
    towers: Sequence[Tower],
    train: Split,
    val: Split,
    settings: TrainConfig,
    *,
    sinks: Sequence[EpochSink],
    objective: Objective,
) -> FitOutcome:
    """Train every tower's model in place, all in one `fit`, with `train:`'s learning rate,
    batch size and epochs, on the task's loss (`objective`).

    A tower whose loss turns NaN or infinite is noted at the end of that epoch and no longer
    reported; the others train on unaffected (no weight of theirs depends on it).
    """
    names = [t.model.name for t in towers]
    if len(set(names)) != len(names):
        raise ValueError(f"tower models need distinct names, got {names}")
    graph = tower_graph(towers, tuple(train.features.shape[1:]), objective)
    n_inputs = len(graph.inputs)
    decays = [(v, t.weight_decay) for t in towers for v in decayed_kernels(t.model)]
    steps_per_epoch = math.ceil(len(train.labels) / settings.batch_size)
    optimizer = PerTowerAdamW(settings.learning_rate, decays)
    # Its slots made now, not while the first step is traced: a variable created during a
    # trace makes TensorFlow trace the step again.
    optimizer.build(graph.trainable_variables)
    graph.compile(
        optimizer=optimizer,
        # One host round-trip per epoch: small models are dominated by per-step overhead.
        steps_per_execution=steps_per_epoch,
    )
    outcome = FitOutcome(seconds=0.0)
    collector = _EpochCollector(names, n_inputs, val, list(sinks), outcome)
    started = time.perf_counter()
    graph.fit(
        fused_dataset(towers, train, settings.batch_size),
        epochs=settings.epochs,
        callbacks=[collector],
        shuffle=False,  # each stream shuffles itself, with its seed
        verbose=0,
    )
    outcome.seconds = time.perf_counter() - started
    return outcome

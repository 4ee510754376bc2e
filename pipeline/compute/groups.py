"""The sweep cut into groups: towers that share a training set, at most `compute.group_size`.

A group is what one `fit` trains as one graph, and what a worker process or a Ray task
receives. Its description is plain data (picklable, no TensorFlow object): the worker
builds the towers itself with the seeds they have alone, so where a group runs changes no
bit of its weights (tests/test_compute.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.config.builder_ref import BuilderRef
from pipeline.config.entries import NO_TUNING, Tuning
from pipeline.config.schema import TrainConfig
from pipeline.core.task import REGRESSION


@dataclass(frozen=True)
class ModelTask:
    """One tower as a worker builds it: its name, L2 rate per layer, seed and weight decay,
    and when fine-tuning its start, L2 toward it and frozen layers."""

    name: str
    layer_rates: tuple[tuple[str, float], ...]
    seed: int
    weight_decay: float
    tuning: Tuning = NO_TUNING


@dataclass(frozen=True)
class Recipe:
    """What every group of a sweep shares: how to build, where the data is, how to train."""

    builder: BuilderRef
    input_shape: tuple[int, ...]
    n_classes: int  # the label noise's classes; 0 for a regression
    prepared_dir: Path
    base_seed: int  # label noise of pool subsets, and each process's global seed
    train: TrainConfig
    task: str  # core/task.py, from the prepared data's meta.json
    folds: int | None = None  # choose.folds: k, for the fold groups' training and held-out rows
    # The share of labels flipped in the training rows cut from the pooled rows (a fold's,
    # the refit's).
    pooled_label_noise: float = 0.0
    # Regression: the training rows' target standard deviation (the epochs' RMSE in units).
    target_std: float = 1.0

    @property
    def n_outputs(self) -> int:
        """The model's output width: one probability per class, or one value."""
        return 1 if self.task == REGRESSION else self.n_classes


# Where a group's training rows come from: None, data's training split; (rows, noise), a
# prefix of the nested pool (datasets/subsets.py); ("fold", i), every fold of the pooled
# training and validation rows but fold i, which is then its validation split
# (datasets/folds.py); REFIT, every pooled row (the refit stage's model, which has no rows
# left to validate on: its per-epoch validation figures are its training rows').
TrainingSet = tuple[int, float] | tuple[str, int] | None
REFIT = ("refit", 0)


def is_fold(training_set: TrainingSet) -> bool:
    return training_set is not None and training_set[0] == "fold"


@dataclass(frozen=True)
class GroupTask:
    index: int
    towers: tuple[ModelTask, ...]
    training_set: TrainingSet
    recipe: Recipe

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.towers]

    @property
    def label(self) -> str:
        names = self.names
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"group {self.index + 1} ({shown})"


@dataclass
class GroupResult:
    """What a group's training returns: numpy only, never a Keras object."""

    index: int
    weights: dict[str, list[np.ndarray]]  # tower name -> model.get_weights()
    diverged_at_epoch: dict[str, int]
    seconds: float
    environment: dict[str, str]
    attempts: int = 1


@dataclass
class GroupFailure:
    index: int
    names: list[str]
    reason: str


@dataclass
class GroupOutcomes:
    """Every group's result and failure, in group order."""

    results: list[GroupResult] = field(default_factory=list)
    failures: list[GroupFailure] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)

    @property
    def diverged_at_epoch(self) -> dict[str, int]:
        return {name: e for r in self.results for name, e in r.diverged_at_epoch.items()}

    @property
    def failed(self) -> dict[str, str]:
        return {name: f.reason for f in self.failures for name in f.names}


def cut_groups(
    towers: Sequence[tuple[ModelTask, TrainingSet]], group_size: int, recipe: Recipe
) -> list[GroupTask]:
    """Towers with the same training set, in their order, cut into groups of `group_size`.

    Chunks of one training set are as even as the size allows (17 towers at 16: 9 + 8), so no
    group is left with a single straggler."""
    by_set: dict[object, list[ModelTask]] = {}
    for tower, key in towers:
        by_set.setdefault(key, []).append(tower)
    tasks: list[GroupTask] = []
    for key, members in by_set.items():
        n_chunks = -(-len(members) // group_size)
        bounds = [round(i * len(members) / n_chunks) for i in range(n_chunks + 1)]
        for start, stop in itertools.pairwise(bounds):
            tasks.append(GroupTask(len(tasks), tuple(members[start:stop]), key, recipe))
    return tasks

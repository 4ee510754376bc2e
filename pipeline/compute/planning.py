"""A sweep's towers as group tasks: per training set, at most `compute.group_size` towers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pipeline.compute.groups import (
    REFIT,
    GroupTask,
    ModelTask,
    Recipe,
    TrainingSet,
    cut_groups,
    is_fold,
)
from pipeline.config import BuilderRef, EntrySpec, LabConfig, ModelSpec
from pipeline.config.schema import DataConfig
from pipeline.core.contracts import PreparedMeta
from pipeline.datasets import subsets

log = logging.getLogger(__name__)


def sweep_groups(
    config: LabConfig,
    towers: Sequence[ModelSpec],
    meta: PreparedMeta,
    prepared_dir: Path,
    builder: BuilderRef,
) -> list[GroupTask]:
    """Entries without `train_size` or `label_noise` share `data:`'s training split; the
    others train on prefixes of the nested pool (datasets/subsets.py), one training set per
    (rows, noise); fold towers (`choose.folds`) one per fold, validated on its held-out rows."""
    recipe = group_recipe(config, meta, prepared_dir, builder)
    keyed = [
        (
            ModelTask(
                t.name, tuple(t.entry.layer_rates), t.seed, t.entry.weight_decay, t.entry.tuning
            ),
            training_set_of(t, config.data, meta.pool_rows),
        )
        for t in towers
    ]
    tasks = cut_groups(keyed, config.compute.group_size, recipe)
    if len(tasks) > 1:
        for task in tasks:
            log.info(
                "%s: %d models on %s",
                task.label,
                len(task.towers),
                training_set_label(task.training_set, config.choose.folds),
            )
    return tasks


def refit_group(
    config: LabConfig,
    entry: EntrySpec,
    meta: PreparedMeta,
    prepared_dir: Path,
    builder: BuilderRef,
) -> GroupTask:
    """The refit stage's model as a group of one: `entry` with the base seed, on every pooled
    training and validation row (the sweep's own training path, so the same bits as a tower
    trained on those rows)."""
    tower = ModelTask(
        f"{entry.name}-refit",
        tuple(entry.layer_rates),
        config.base.seed,
        entry.weight_decay,
        entry.tuning,
    )
    return GroupTask(0, (tower,), REFIT, group_recipe(config, meta, prepared_dir, builder))


def group_recipe(
    config: LabConfig, meta: PreparedMeta, prepared_dir: Path, builder: BuilderRef
) -> Recipe:
    return Recipe(
        builder=builder,
        input_shape=tuple(meta.input_shape),
        n_classes=meta.n_classes,
        prepared_dir=prepared_dir.resolve(),  # a Ray task does not start in our folder
        base_seed=config.base.seed,
        train=config.train,
        folds=config.choose.folds,
        pooled_label_noise=config.data.effective_label_noise,
        task=meta.task,
        target_std=meta.target_std if meta.is_regression else 1.0,
    )


def training_set_of(tower: ModelSpec, data: DataConfig, pool_rows: int) -> TrainingSet:
    """Where the tower's training rows come from (groups.TrainingSet)."""
    if tower.fold is not None:
        return ("fold", tower.fold)
    return subsets.training_set(tower.entry, data, pool_rows)


def applied_data(
    data: DataConfig, training_set: TrainingSet, train_rows: int, folds: int | None
) -> dict:
    """The data settings a model was trained with, as its config.json and MLflow run record
    them: `data:` flat and resolved (DataConfig.as_trained), with the subset and label-noise
    share that applied to this model's training set (a pool entry's own), the rows it
    trained on, and where they came from."""
    settings = data.as_trained()
    if training_set is not None and not is_fold(training_set):
        settings["train_subset"], settings["label_noise"] = training_set
    settings["train_rows"] = train_rows
    settings["training_set"] = training_set_label(training_set, folds)
    return settings


def training_set_label(training_set: TrainingSet, folds: int | None) -> str:
    if is_fold(training_set):
        return f"fold {training_set[1] + 1} of {folds} (validated on its held-out rows)"
    return subsets.pool_set_label(training_set)

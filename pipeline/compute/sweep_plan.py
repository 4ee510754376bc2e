"""What `train` settles before the first MLflow run exists: the splits, every tower and its
initialised model, and the data each tower's training set applies.

A builder that fails, a rate pattern that matches no layer, a list of the wrong length, a
sweep too large for memory: all refused here, before any MLflow run or output exists.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import BuilderRef, LabConfig, ModelSpec, check_memory, resolve_towers
from pipeline.config.entries import ModelLayers
from pipeline.core import contracts
from pipeline.core.task import Task, task_named

log = logging.getLogger(__name__)


def build_models(
    builder: BuilderRef, towers, input_shape, n_outputs: int, task: Task
):
    """Each tower's model, initialised as it would be in a process that trains it alone."""
    from pipeline.modeling import build_tower

    return [
        build_tower(
            builder,
            input_shape,
            n_outputs,
            dict(tower.entry.layer_rates),
            seed=tower.seed,
            name=tower.name,
            task=task,
            tuning=tower.entry.tuning,
        )
        for tower in towers
    ]


# A penalty this many times the data loss at initialisation leaves the data no say: the
# weights collapse to 0 and every prediction is one class (like `l2_1e_1` at 100x less).
OVERWHELMING_PENALTY_FACTOR = 1000.0


def initial_data_loss(task: Task, n_classes: int) -> float:
    """What an untrained network's data loss is near."""
    if task.is_regression:
        # The target is standardised to mean 0 and variance 1 on the training rows, and an
        # untrained network's outputs scatter around 0, so the mean squared error is about
        # that variance, 1, whatever the target's units (measured 0.7 to 1.6 for the default
        # 256-256 tanh MLP on 8 and 64 standard-normal features): one threshold for all.
        return 1.0
    # The cross-entropy of a uniform guess over the classes.
    return math.log(n_classes)


def warn_overwhelming_penalties(
    towers, models, n_classes: int, task: Task
) -> None:
    """One warning line per entry whose L2 term at initialisation dwarfs the data loss.

    A typo such as `1_000` or `0x10` is valid YAML for a number and trains to a collapsed
    model; this says so before the time is spent.
    """
    import keras

    data_loss = initial_data_loss(task, n_classes)
    collapse = "a constant prediction" if task.is_regression else "one class"
    for tower, model in zip(towers, models, strict=True):
        if tower.is_repeat or not model.losses:
            continue
        penalty = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
        if penalty > OVERWHELMING_PENALTY_FACTOR * data_loss:
            log.warning(
                "warning: sweep.%s: L2 rate(s) %s give a penalty of %.3g at initialisation, "
                "%.0fx the data loss (%.2f); the model will collapse to %s. Is that "
                "rate meant?",
                tower.entry.name,
                tower.entry.rates_label,
                penalty,
                penalty / data_loss,
                data_loss,
                collapse,
            )


@dataclass
class SweepPlan:
    """Everything `train` settles before the first MLflow run exists."""

    config: LabConfig
    meta: contracts.PreparedMeta
    prepared_dir: Path
    builder: BuilderRef
    layers: ModelLayers  # the layers every tower's model has (rates resolve against them)
    towers: list[ModelSpec]
    models: list  # one Keras model per tower, initialised
    trained_on: dict[str, dict]  # tower name -> its data settings as applied
    input_example: object  # a few training rows, logged with each model to MLflow


def plan_sweep(config: LabConfig, prepared_dir: Path, builder: BuilderRef) -> SweepPlan:
    """Read the splits, resolve every tower and build its model."""
    from pipeline.datasets import prepared
    from pipeline.modeling.builders import model_layers

    input_example = prepared.read_split(prepared_dir, "train").features[:5]
    meta = contracts.read_meta(prepared_dir)
    task = task_named(meta.task)
    layers = model_layers(builder, meta.input_shape, meta.n_outputs, task, config.base.seed)
    towers = resolve_towers(config, layers)
    if config.model.is_mlp:  # the estimate counts the built-in MLP's weights
        check_memory(config, meta.n_features, meta.n_outputs)
    models = build_models(builder, towers, meta.input_shape, meta.n_outputs, task)
    warn_overwhelming_penalties(towers, models, meta.n_classes, task)
    return SweepPlan(
        config=config,
        meta=meta,
        prepared_dir=prepared_dir,
        builder=builder,
        layers=layers,
        towers=list(towers),
        models=models,
        trained_on=applied_data_of(config, towers, meta, prepared_dir),
        input_example=input_example,
    )


def applied_data_of(config: LabConfig, towers, meta, prepared_dir: Path) -> dict[str, dict]:
    """Per tower, the data settings that applied to its training set and its row count."""
    from pipeline.compute.planning import applied_data, training_set_of
    from pipeline.datasets import folds

    fold_rows = []
    if config.choose.folds:
        labels = folds.read_cv_pool(prepared_dir).labels
        fold_rows = folds.fold_training_rows(labels, config.choose.folds, config.base.seed)
    applied = {}
    for tower in towers:
        key = training_set_of(tower, config.data, meta.pool_rows)
        if tower.fold is not None:
            rows = fold_rows[tower.fold]
        else:
            rows = meta.rows["train"] if key is None else key[0]
        applied[tower.name] = applied_data(config.data, key, rows, config.choose.folds)
    return applied

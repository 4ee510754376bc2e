"""Training one group where it runs: in the stage's process, a worker process or a Ray task.

Needs TensorFlow set up by `core.runtime.init_tensorflow` (the worker entry points do it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pipeline.compute.groups import GroupResult, GroupTask
from pipeline.core.epoch_metrics import EpochSink


def environment() -> dict[str, str]:
    """What decides a float32 result's bits besides the params and data: the numeric
    libraries' versions and oneDNN's instruction set (model_store.key.environment, which a
    stored model's key holds: the node's own, where it trained), and the thread pools
    (docs/reliability.md, Reproducibility across x86 CPUs). Recorded per run, so runs from
    unlike nodes are told apart."""
    import tensorflow as tf

    from pipeline.model_store.key import environment as numeric_environment

    return {
        **numeric_environment(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"),
        "intra_op_threads": _threads(
            "TF_NUM_INTRAOP_THREADS", tf.config.threading.get_intra_op_parallelism_threads()
        ),
        "inter_op_threads": _threads(
            "TF_NUM_INTEROP_THREADS", tf.config.threading.get_inter_op_parallelism_threads()
        ),
        "cpu_count": str(os.cpu_count()),
    }


def _threads(variable: str, configured: int) -> str:
    """A thread pool's size: as set in the environment before TensorFlow's import, or in its
    config; 0 from both means TensorFlow's default, one thread per core."""
    return os.environ.get(variable) or (str(configured) if configured else "default")


def build_group_models(task: GroupTask) -> list:
    from pipeline.core.task import task_named
    from pipeline.modeling.builders import build_tower

    recipe = task.recipe
    return [
        build_tower(
            recipe.builder,
            recipe.input_shape,
            recipe.n_outputs,
            dict(tower.layer_rates),
            seed=tower.seed,
            name=tower.name,
            task=task_named(recipe.task),
            tuning=tower.tuning,
        )
        for tower in task.towers
    ]


def group_objective(task: GroupTask):
    """What the group's towers minimise and report (modeling/objective.py)."""
    from pipeline.core.task import task_named
    from pipeline.modeling.objective import Objective

    return Objective(task_named(task.recipe.task), task.recipe.target_std)


def group_splits(task: GroupTask):
    """(training split, validation split) of the group: a fold group is validated on its
    held-out fold, the refit on its own training rows, every other group on data's
    validation split."""
    from pipeline.compute.groups import REFIT, is_fold
    from pipeline.datasets import folds, prepared, subsets

    recipe = task.recipe
    if task.training_set == REFIT:
        pool = folds.read_cv_pool(recipe.prepared_dir)
        train = folds.refit_set(pool, recipe.n_classes, recipe.pooled_label_noise, recipe.base_seed)
        return train, train
    if is_fold(task.training_set):
        train, held_out, _ = folds.fold_sets(
            folds.read_cv_pool(recipe.prepared_dir),
            recipe.folds,
            task.training_set[1],
            recipe.n_classes,
            recipe.pooled_label_noise,
            recipe.base_seed,
        )
        return train, held_out
    train = subsets.training_split(
        recipe.prepared_dir, task.training_set, recipe.n_classes, recipe.base_seed
    )
    return train, prepared.read_split(recipe.prepared_dir, "val")


def run_group(task: GroupTask, on_epoch: EpochSink, models: Sequence | None = None) -> GroupResult:
    """Train the group's towers as one graph; `models`: already built ones (the stage's own,
    in process), else built here from the task."""
    from pipeline.modeling.towers import Tower, fit_towers

    recipe = task.recipe
    models = list(models) if models is not None else build_group_models(task)
    train, val = group_splits(task)
    inputs = [
        Tower(model, tower.seed, tower.weight_decay)
        for model, tower in zip(models, task.towers, strict=True)
    ]
    outcome = fit_towers(
        inputs, train, val, recipe.train, sinks=[on_epoch], objective=group_objective(task)
    )
    return GroupResult(
        index=task.index,
        weights={model.name: model.get_weights() for model in models},
        diverged_at_epoch=dict(outcome.diverged_at_epoch),
        seconds=outcome.seconds,
        environment=environment(),
    )

"""Stage `prepare`: validate all of params.yaml, then write the train/val/test splits.

The whole file is validated here, not only `data:`, because this stage runs first: a bad
sweep entry is reported before anything trains or a file is named after it.
Its output is declared `persist` in dvc.yaml, so DVC leaves the earlier splits in place
while this runs; they are replaced only once the new ones are complete.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from pipeline.config import (
    BuilderRef,
    EntrySpec,
    LabConfig,
    check_memory,
    load_config,
    resolve_towers,
)
from pipeline.config.data_keys import check_regression_keys
from pipeline.core.contracts import PreparedMeta, write_meta
from pipeline.core.errors import DataError
from pipeline.core.files import publish_dir, staging_dir
from pipeline.core.preparation import Preparation, Scaling, write_preparation
from pipeline.core.runner import run_stage
from pipeline.core.task import task_named
from pipeline.datasets import (
    check_entries,
    check_folds,
    load_dataset,
    nested_order,
    prepared,
    write_cv_pool,
    write_pool,
)

log = logging.getLogger(__name__)


def prepare(params: Path, out_dir: Path) -> None:
    config = load_config(params)
    cfg = config.data
    dataset = load_dataset(cfg, project_root=params.resolve().parent)
    task = task_named(dataset.task)
    if task.is_regression:
        check_regression_keys(config, params)
    # Split, noised and scaled flat; meta.json records the shape read_split restores.
    features = dataset.features.reshape(len(dataset.labels), -1)
    splits = prepared.split_dataset(
        features,
        dataset.labels,
        test_fraction=cfg.test_fraction,
        val_fraction=cfg.val_fraction,
        train_subset=cfg.effective_train_subset,
        seed=config.base.seed,
    )
    target_scaling = _target_scaling(splits["train"].labels) if task.is_regression else None
    if target_scaling is not None:
        splits = {name: target_scaling.applied(split) for name, split in splits.items()}
    clean_train_labels = splits["train"].labels
    noisy, flipped = prepared.flip_labels(
        splits["train"].labels,
        len(dataset.class_names),
        cfg.effective_label_noise,
        seed=config.base.seed,
    )
    splits["train"] = prepared.Split(splits["train"].features, noisy)
    scaled, scaling = prepared.scale_splits(splits, cfg.scaling)
    pool = nested_pool(features, dataset.labels, cfg, config.base.seed, scaling, target_scaling)
    # Cross-validation pools the training rows (clean labels: each fold adds its own noise)
    # and the validation rows.
    cv_pool = prepared.Split(
        np.concatenate([scaled["train"].features, scaled["val"].features]),
        np.concatenate([clean_train_labels, scaled["val"].labels]),
    )
    meta = PreparedMeta(
        source=cfg.source,
        class_names=tuple(dataset.class_names),
        n_features=int(features.shape[1]),
        rows={name: len(split.labels) for name, split in scaled.items()},
        train_labels_flipped=int(flipped.sum()),
        input_shape=tuple(int(n) for n in dataset.features.shape[1:]),
        pool_rows=len(pool.labels),
        incomplete_rows_dropped=dataset.incomplete_rows_dropped,
        rows_read=dataset.rows_read,
        task=task.name,
        target_mean=None if target_scaling is None else target_scaling.mean,
        target_std=None if target_scaling is None else target_scaling.std,
    )
    check_training(config, params, meta, cv_pool.labels)
    staging = staging_dir(out_dir)
    prepared.write_splits(staging, scaled, flipped)
    write_pool(staging, pool)
    write_cv_pool(staging, cv_pool)
    write_meta(staging, meta)
    write_preparation(staging, preparation_of(dataset, meta, scaling))
    publish_dir(staging, out_dir)
    _log_prepared(meta, out_dir)


def preparation_of(dataset, meta: PreparedMeta, scaling: Scaling) -> Preparation:
    """What a packaged model needs to take a user's rows as `prepare` took these."""
    return Preparation(
        source=meta.source,
        task=meta.task,
        input_shape=meta.input_shape,
        scaling=scaling,
        columns=dataset.columns,
        target_column=dataset.target_column,
        ignored_columns=dataset.ignored_columns,
        labels=dataset.label_values or dataset.class_names,
        target_mean=meta.target_mean,
        target_std=meta.target_std,
    )


def _log_prepared(meta: PreparedMeta, out_dir: Path) -> None:
    rows = "/".join(f"{name} {n}" for name, n in meta.rows.items())
    if meta.is_regression:
        log.info(
            "%s: %s rows, regression, training target mean %.6g, std %.6g -> %s",
            meta.source, rows, meta.target_mean, meta.target_std, out_dir,
        )  # fmt: skip
    else:
        log.info(
            "%s: %s rows, %d classes, %d training labels flipped -> %s",
            meta.source, rows, meta.n_classes, meta.train_labels_flipped, out_dir,
        )  # fmt: skip


def _target_scaling(train_target: np.ndarray) -> prepared.TargetScaling:
    """The training rows' target statistics; a constant training target has no scale."""
    scaling = prepared.TargetScaling.of_training(train_target)
    if not scaling.std > 0:
        raise DataError(
            f"the {len(train_target)} training rows all have the target {scaling.mean:g}: it"
            f" cannot be standardised; add rows whose target varies (or raise"
            f" data.train_subset, if set)"
        )
    return scaling


def check_training(config: LabConfig, params: Path, meta: PreparedMeta, cv_labels) -> None:
    """What training would refuse, refused now: training sets smaller than a batch, more
    folds than the data allows, a sweep too large for memory, a builder that fails."""
    # Only the training sets matter here; rates are resolved once the model's layers are known.
    sizes = [
        EntrySpec(name, (), e.weight_decay, train_size=e.train_size, label_noise=e.label_noise)
        for name, e in config.sweep.items()
    ]
    check_entries(sizes, config.data, meta.pool_rows, meta.rows["train"], config.train.batch_size)
    if config.choose.folds is not None:
        check_folds(cv_labels, config.choose.folds, meta.class_names)
    if config.model.is_mlp:  # the estimate counts the built-in MLP's weights
        check_memory(config, meta.n_features, meta.n_outputs)
    else:
        builder = BuilderRef.of_params(config.model, params)
        check_builder(config, builder, meta)


def check_builder(config: LabConfig, builder: BuilderRef, meta: PreparedMeta):
    """Build a model other than the MLP once (the MLP's layers are known without Keras), so
    that a failing builder, a subclassed model or a rate pattern that matches no layer is
    refused here, before DVC deletes `train`'s outputs to run it. Costs the Keras import
    (docs/reliability.md, Bad input)."""
    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(config.base.seed)
    from pipeline.core.task import task_named
    from pipeline.modeling.builders import model_layers

    task = task_named(meta.task)
    layers = model_layers(builder, meta.input_shape, meta.n_outputs, task, config.base.seed)
    resolve_towers(config, layers)


def nested_pool(
    features,
    labels,
    cfg,
    seed: int,
    scaling: Scaling,
    target_scaling: prepared.TargetScaling | None,
) -> prepared.Split:
    """Every training row (before the data's `train_subset`), scaled like the splits (a
    regression target standardised like theirs), in nested order with clean labels
    (pipeline/datasets/subsets.py)."""
    whole = prepared.split_dataset(
        features,
        labels,
        test_fraction=cfg.test_fraction,
        val_fraction=cfg.val_fraction,
        train_subset=None,
        seed=seed,
    )["train"]
    order = nested_order(whole.labels, seed)
    features = scaling.applied(whole.features[order])
    pool = prepared.Split(features, whole.labels[order])
    return pool if target_scaling is None else target_scaling.applied(pool)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("data/prepared"))
    args = parser.parse_args(argv)
    run_stage("prepare", lambda: prepare(args.params, args.out), outputs=[args.out])


if __name__ == "__main__":
    main()

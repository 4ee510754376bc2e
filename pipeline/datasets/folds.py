"""k-fold cross-validation sets (`choose.folds`): data's training and validation rows pooled,
cut into k stratified folds (a regression target: stratified on its quantile bins).

`prepare` writes the pooled rows with their clean labels (`contracts.CV_POOL_FILE`): the
training split's rows first, then the validation split's, scaled like every split (with the
scaler fitted on the training split). Fold i trains on the other k - 1 folds, with the share
`data.label_noise` of those rows moved to another class (its own seeded draw, exactly
round(share x rows) flipped), and is scored on fold i with clean labels: noise stays on
training rows only, as with the single split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core import contracts
from pipeline.core.errors import DataError
from pipeline.datasets import prepared

# Seed streams derived from base.seed, apart from the split's, the pool's and the noise's.
FOLD_STREAM = 3
FOLD_NOISE_STREAM = 4
REFIT_NOISE_STREAM = 5


def fold_of_rows(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of each row: each class's rows shuffled and dealt round-robin, each
    class starting where the previous one stopped, so every fold holds each class's rows
    within one row of its share and the folds' sizes differ by at most one row. A regression
    target's quantile bins take the place of classes, at least k rows each, so every bin
    reaches every fold."""
    # Not scikit-learn's StratifiedKFold: it gives the same guarantees but deals other rows
    # to each fold, so every cross-validated figure the docs quote (docs/decision.md, the
    # README) would change with no gain; this dealing is tested in tests/test_folds.py. One
    # dealing serves both tasks.
    rng = np.random.default_rng([seed, FOLD_STREAM])
    strata = prepared.strata(labels, len(labels) // k)
    folds = np.empty(len(labels), dtype=np.int64)
    start = 0
    for cls in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == cls))
        folds[rows] = (start + np.arange(len(rows))) % k
        start = (start + len(rows)) % k
    return folds


def fold_training_rows(labels: np.ndarray, k: int, seed: int) -> list[int]:
    """Per fold, the rows its model trains on: every pooled row outside the fold."""
    held_out = np.bincount(fold_of_rows(labels, k, seed), minlength=k)
    return [len(labels) - int(n) for n in held_out]


def check_folds(labels: np.ndarray, k: int, class_names) -> None:
    """DataError when a class has fewer pooled rows than folds (a fold would lack it), or a
    regression's pool has fewer rows than folds (a fold would be empty)."""
    if prepared.is_target(labels):
        if len(labels) < k:
            raise DataError(
                f"choose.folds = {k}: the training and validation splits together have only"
                f" {len(labels)} rows, fewer than the folds; use choose.folds <= {len(labels)}"
                f" or more data"
            )
        return
    counts = np.bincount(labels, minlength=len(class_names))
    smallest = int(np.argmin(counts))
    if counts[smallest] < k:
        raise DataError(
            f"choose.folds = {k}: class {class_names[smallest]!r} has only "
            f"{counts[smallest]} rows in the training and validation splits together, fewer "
            f"than the folds; use choose.folds <= {counts[smallest]} or more data"
        )


def write_cv_pool(prepared_dir: Path, pool: prepared.Split) -> None:
    prepared.write_rows(prepared_dir / contracts.CV_POOL_FILE, pool)


def read_cv_pool(prepared_dir: Path) -> prepared.Split:
    """The pooled rows, clean labels, each example in its shape."""
    path = prepared_dir / contracts.CV_POOL_FILE
    return prepared.in_example_shape(
        prepared.read_rows(path, "cross-validation rows missing"), prepared_dir
    )


def fold_sets(
    pool: prepared.Split, k: int, fold: int, n_classes: int, noise: float, seed: int
) -> tuple[prepared.Split, prepared.Split, np.ndarray]:
    """(training set with noisy labels, held-out fold with clean labels, the held-out rows'
    indices into the pool) of fold `fold` of `k`."""
    folds = fold_of_rows(pool.labels, k, seed)
    train_rows = np.flatnonzero(folds != fold)
    held_rows = np.flatnonzero(folds == fold)
    noisy, _ = prepared.flip_labels(
        pool.labels[train_rows], n_classes, noise, seed=[seed, FOLD_NOISE_STREAM, fold]
    )
    train = prepared.Split(pool.features[train_rows], noisy)
    held_out = prepared.Split(pool.features[held_rows], pool.labels[held_rows])
    return train, held_out, held_rows


def refit_set(pool: prepared.Split, n_classes: int, noise: float, seed: int) -> prepared.Split:
    """Every pooled row, the share `noise` of labels flipped (its own seeded draw): what the
    chosen entry is trained on once more after the folds chose it."""
    noisy, _ = prepared.flip_labels(pool.labels, n_classes, noise, seed=[seed, REFIT_NOISE_STREAM])
    return prepared.Split(pool.features, noisy)

"""Nested training sets: one order of the training pool whose every prefix is a stratified
subset with the same share of flipped labels, so a larger subset contains the smaller ones.
A regression target is stratified on its quantile bins (prepared.strata) and has no labels
to flip (prepare refuses label noise on it).

`prepare` writes the whole training pool (every training row, before the data's
`train_subset`) in that order with its clean labels (`contracts.POOL_FILE`). An entry that
sets `train_size` or `label_noise` trains on the first `train_size` rows (default: the
data's `train_subset`, else the whole pool) with labels flipped by the rule below (default
share: the data's `label_noise`; `data.digits.*` for the demo, `data.*` for a user's source).
Entries that set neither train on `data:`'s training split, exactly as before.

The flip rule is nested too: for share f, row k of the order (0-based) is flipped when
round(f·(k+1)) > round(f·k), so every prefix of n rows has exactly round(f·n) flipped rows,
and those of a shorter prefix are among them. Each row's new class comes from one random
offset per row, drawn once for the whole pool: the same row gets the same wrong label in
every subset and at every share.

The pool is scaled with the scaler fitted on `data:`'s training split, as validation and
test are, so every entry is judged on the very same validation and test features.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.config.entries import EntrySpec
from pipeline.config.schema import DataConfig
from pipeline.core import contracts
from pipeline.core.errors import DataError
from pipeline.datasets import prepared

# Seeds derived from base.seed for the two draws, kept apart from the split's and the
# legacy label noise's draws.
ORDER_STREAM = 1
OFFSET_STREAM = 2


def nested_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of the rows whose every prefix holds each class (or each quantile bin of
    a regression target) in proportion (±1 row).

    Each class's rows are shuffled; row i of a class with m rows gets the key (i + u) / m with
    u uniform in [0, 1), and rows are taken in key order: class by class, the prefixes fill at
    the class's rate, and within each round the classes come in random order.
    """
    rng = np.random.default_rng([seed, ORDER_STREAM])
    strata = prepared.strata(labels, len(labels))
    keys = np.empty(len(labels))
    for cls in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == cls))
        keys[rows] = (np.arange(len(rows)) + rng.random(len(rows))) / len(rows)
    return np.argsort(keys, kind="stable")


def flipped_positions(n_rows: int, fraction: float) -> np.ndarray:
    """Boolean mask over the order: every prefix of n rows has round(fraction·n) set."""
    target = np.floor(fraction * np.arange(n_rows + 1) + 0.5).astype(np.int64)
    return np.diff(target) > 0


def noisy_labels(
    labels: np.ndarray, n_classes: int, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The pool's labels (in nested order) with the nested share `fraction` moved to another
    class; returns the labels and the mask of changed rows."""
    if fraction == 0:  # also a regression target's, which has no classes to draw from
        return labels.copy(), np.zeros(len(labels), dtype=bool)
    offsets = np.random.default_rng([seed, OFFSET_STREAM]).integers(1, n_classes, len(labels))
    flipped = flipped_positions(len(labels), fraction)
    noisy = np.where(flipped, (labels + offsets) % n_classes, labels)
    return noisy.astype(labels.dtype), flipped


def write_pool(prepared_dir: Path, pool: prepared.Split) -> None:
    prepared.write_rows(prepared_dir / contracts.POOL_FILE, pool)


def read_pool(prepared_dir: Path) -> prepared.Split:
    return prepared.read_rows(prepared_dir / contracts.POOL_FILE, "training pool missing")


def training_set(entry: EntrySpec, cfg: DataConfig, pool_rows: int) -> tuple[int, float] | None:
    """(rows, label-noise share) of the entry's pool prefix; None: `data:`'s training split."""
    if not entry.uses_pool:
        return None
    rows = entry.train_size or cfg.effective_train_subset or pool_rows
    noise = cfg.effective_label_noise if entry.label_noise is None else entry.label_noise
    if rows > pool_rows:
        raise DataError(
            f"sweep.{entry.name}.train_size = {rows}: the training pool has {pool_rows} rows;"
            f" use at most {pool_rows} (or lower data.test_fraction / data.val_fraction)"
        )
    return rows, noise


def check_entries(
    entries: Sequence[EntrySpec], cfg: DataConfig, pool_rows: int, train_rows: int, batch_size: int
) -> None:
    """Raise DataError for the first entry whose training set the pool cannot give, or that
    is smaller than one batch (Keras would silently train on it as one full batch)."""
    for entry in entries:
        key = training_set(entry, cfg, pool_rows)
        rows = train_rows if key is None else key[0]
        if batch_size > rows:
            where = "the training split" if key is None else f"sweep.{entry.name}'s training set"
            raise DataError(
                f"train.batch_size = {batch_size} is larger than {where} ({rows} rows), which"
                f" would silently become full-batch training; use at most {rows}"
            )


def training_split(
    prepared_dir: Path, key: tuple[int, float] | None, n_classes: int, seed: int
) -> prepared.Split:
    """The training split for a `training_set` key, labels as the model is trained on them."""
    if key is None:
        return prepared.read_split(prepared_dir, "train")
    rows, noise = key
    pool = read_pool(prepared_dir)
    labels, _ = noisy_labels(pool.labels, n_classes, noise, seed)
    shape = contracts.read_meta(prepared_dir).input_shape  # the pool is stored flat
    return prepared.Split(pool.features[:rows].reshape(-1, *shape), labels[:rows])


def pool_set_label(key: tuple[int, float] | None) -> str:
    return "data: training split" if key is None else f"pool[:{key[0]}], noise {key[1]:g}"

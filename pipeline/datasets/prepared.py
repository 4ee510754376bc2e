"""Splits: stratify, corrupt training labels, scale, and read and write them.

A prepared split is one Parquet file per split with feature columns `x0..x{n-1}` and a
`label`: a class index, or for regression the target standardised with the training rows'
mean and standard deviation (float32). The class names or the target's statistics and the
row counts travel in `meta.json` beside them (core/contracts.py).

A regression target has no classes to stratify on, so every stratified draw (the splits,
`train_subset`, the nested pool's order, the folds) stratifies on its quantile bins instead
(`strata`): each part then spans the target's range like the whole, also on small tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pipeline.core.contracts import read_meta
from pipeline.core.errors import DataError
from pipeline.core.preparation import Scaling

SPLITS = ("train", "val", "test")
# Deciles: enough to keep the tails in every part; fewer when a part has fewer rows.
MAX_QUANTILE_BINS = 10
LABEL = "label"
FLIPPED = "label_was_flipped"


@dataclass(frozen=True)
class Split:
    features: np.ndarray
    labels: np.ndarray


def split_dataset(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    test_fraction: float,
    val_fraction: float,
    train_subset: int | None,
    seed: int,
) -> dict[str, Split]:
    """Stratified train/val/test split; the fractions are of all rows.

    `train_subset` keeps a stratified subset of the training rows, so that a small network
    can memorise them (the overfitting that L2 is meant to cure). Labels that are floats
    (a regression target) stratify on their quantile bins (`_draw`).
    """
    x, y = features, labels
    try:
        x_rest, x_test, y_rest, y_test = _draw(x, y, seed, test_size=test_fraction)
        x_train, x_val, y_train, y_val = _draw(
            x_rest, y_rest, seed, test_size=val_fraction / (1.0 - test_fraction)
        )
        if train_subset is not None and train_subset < len(y_train):
            x_train, _, y_train, _ = _draw(x_train, y_train, seed, train_size=train_subset)
    except ValueError as exc:
        what = "quantile bins of the target" if is_target(y) else "class"
        raise DataError(
            f"cannot split {len(y)} rows stratified by {what} ({exc}); "
            f"add rows or lower data.test_fraction / data.val_fraction / the train_subset"
        ) from None
    return {
        "train": Split(x_train, y_train),
        "val": Split(x_val, y_val),
        "test": Split(x_test, y_test),
    }


def _draw(x, y, seed: int, *, test_size: float | None = None, train_size: int | None = None):
    """scikit-learn's stratified `train_test_split` of (x, y) into two parts.

    A regression target stratifies on as many quantile bins as the smaller part has rows
    (at most MAX_QUANTILE_BINS), so every bin can reach both parts; the smaller part is at
    most half the rows, so every bin also has the two rows scikit-learn asks of a class.
    Applied to test vs the rest, then validation vs training, then `train_subset`, this lets
    every bin reach train, validation and test.
    """
    # The parts' sizes as train_test_split computes them: a float test_size rounds up.
    n_test = math.ceil(test_size * len(y)) if test_size is not None else len(y) - train_size
    stratify = strata(y, min(n_test, len(y) - n_test))
    return train_test_split(
        x, y, test_size=test_size, train_size=train_size, stratify=stratify, random_state=seed
    )


def is_target(labels: np.ndarray) -> bool:
    """Floats are a regression target (raw or standardised); integers are class indices."""
    return labels.dtype.kind == "f"


def strata(labels: np.ndarray, most_bins: int) -> np.ndarray:
    """What a stratified draw keeps in proportion: the classes as they are, or a regression
    target's quantile bins, `most_bins` of them (at least one, at most MAX_QUANTILE_BINS)."""
    if not is_target(labels):
        return labels
    return quantile_bins(labels, max(1, min(MAX_QUANTILE_BINS, most_bins)))


def quantile_bins(values: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin (0..n_bins-1) of each value: values ranked (ties in row order) and cut into
    `n_bins` runs of equal length (±1 row). By rank rather than by value, so that tied values
    never leave a bin empty."""
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return ranks * n_bins // len(values)


@dataclass(frozen=True)
class TargetScaling:
    """A regression target's standardisation: (y - mean) / std with the training rows' mean
    and population (ddof=0) standard deviation, so one L2 rate means the same whatever the
    target's units."""

    mean: float
    std: float

    @classmethod
    def of_training(cls, target: np.ndarray) -> TargetScaling:
        return cls(mean=float(np.mean(target)), std=float(np.std(target)))

    def standardised(self, target: np.ndarray) -> np.ndarray:
        """The target standardised, as float32 (the dtype the model trains on)."""
        return ((np.asarray(target, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def applied(self, split: Split) -> Split:
        return Split(split.features, self.standardised(split.labels))


def flip_labels(
    labels: np.ndarray, n_classes: int, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Move `fraction` of the labels, chosen at random, to a different random class.

    Returns the new labels and a boolean mask of the rows that were changed.
    """
    rng = np.random.default_rng(seed)
    n_flip = round(fraction * len(labels))
    rows = rng.choice(len(labels), size=n_flip, replace=False)
    # An offset in 1..n_classes-1 guarantees a *different* class, uniformly among the others.
    offsets = rng.integers(1, n_classes, size=n_flip)
    noisy = labels.copy()
    noisy[rows] = (labels[rows] + offsets) % n_classes
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[rows] = True
    return noisy, flipped


def scale_splits(splits: dict[str, Split], method: str) -> tuple[dict[str, Split], Scaling]:
    """Scale features with statistics of the training split only.

    `minmax` maps each training feature to [0, 1] (pixel intensities keep their meaning);
    `standard` gives zero mean and unit variance, which inflates near-constant pixels. The
    scaling is scikit-learn's, fitted here and applied by core/preparation.py, the code the
    packaged model applies to new rows (the same bits as the scaler's own transform).
    """
    scaler = {"minmax": MinMaxScaler, "standard": StandardScaler}[method]()
    scaler.fit(splits["train"].features)
    scaling = Scaling.of_fitted(scaler, method)
    scaled = {name: Split(scaling.applied(s.features), s.labels) for name, s in splits.items()}
    return scaled, scaling


def write_splits(
    out_dir: Path,
    splits: dict[str, Split],
    flipped: np.ndarray,
) -> None:
    """Write the splits into the existing folder `out_dir` (contracts.write_meta adds their
    metadata)."""
    for name, split in splits.items():
        extra = {FLIPPED: flipped} if name == "train" else {}
        write_rows(out_dir / f"{name}.parquet", split, extra)


def read_split(prepared_dir: Path, name: str) -> Split:
    flat = read_rows(prepared_dir / f"{name}.parquet", "prepared split missing")
    # Stored flat; served in the shape of one example (e.g. 8x8x1 images) recorded in meta.
    return in_example_shape(flat, prepared_dir)


def in_example_shape(flat: Split, prepared_dir: Path) -> Split:
    shape = read_meta(prepared_dir).input_shape
    return Split(flat.features.reshape(len(flat.features), *shape), flat.labels)


def write_rows(path: Path, split: Split, extra: dict[str, np.ndarray] | None = None) -> None:
    """Rows as Parquet: flat feature columns `x0..x{n-1}`, then `label` (then `extra`)."""
    n_features = split.features.shape[1]
    frame = pd.DataFrame(split.features, columns=[f"x{i}" for i in range(n_features)])
    frame[LABEL] = split.labels
    for column, values in (extra or {}).items():
        frame[column] = values
    frame.to_parquet(path, index=False)


def read_rows(path: Path, missing: str) -> Split:
    """The rows `write_rows` wrote, features flat; `missing`: what the error calls the file."""
    if not path.is_file():
        raise DataError(f"{path}: {missing}; run `dvc repro -f prepare`")
    frame = pd.read_parquet(path)
    features = frame[[c for c in frame.columns if c.startswith("x")]].to_numpy(np.float32)
    return Split(features, as_labels(frame[LABEL].to_numpy()))


def as_labels(values: np.ndarray) -> np.ndarray:
    """Class indices as int64; a regression's standardised target (stored as floats) as
    float32, the dtype the model trains on."""
    return values.astype(np.float32 if values.dtype.kind == "f" else np.int64)

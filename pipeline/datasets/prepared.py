"""Splits: stratify, corrupt training labels, scale, and read and write them.

A prepared split is one Parquet file per split with feature columns `x0..x{n-1}` and an
integer `label`; the class names and row counts travel in `meta.json` beside them
(core/contracts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pipeline.core.contracts import read_meta
from pipeline.core.errors import DataError

SPLITS = ("train", "val", "test")
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
    can memorise them (the overfitting that L2 is meant to cure).
    """
    x, y = features, labels
    try:
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=test_fraction, stratify=y, random_state=seed
        )
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest,
            y_rest,
            test_size=val_fraction / (1.0 - test_fraction),
            stratify=y_rest,
            random_state=seed,
        )
        if train_subset is not None and train_subset < len(y_train):
            x_train, _, y_train, _ = train_test_split(
                x_train, y_train, train_size=train_subset, stratify=y_train, random_state=seed
            )
    except ValueError as exc:
        raise DataError(
            f"cannot split {len(y)} rows stratified by class ({exc}); "
            f"add rows or lower data.test_fraction / data.val_fraction / the train_subset"
        ) from None
    return {
        "train": Split(x_train, y_train),
        "val": Split(x_val, y_val),
        "test": Split(x_test, y_test),
    }


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


def scale_splits(
    splits: dict[str, Split], method: str
) -> tuple[dict[str, Split], MinMaxScaler | StandardScaler]:
    """Scale features with statistics of the training split only.

    `minmax` maps each training feature to [0, 1] (pixel intensities keep their meaning);
    `standard` gives zero mean and unit variance, which inflates near-constant pixels.
    """
    scaler = {"minmax": MinMaxScaler, "standard": StandardScaler}[method]()
    scaler.fit(splits["train"].features)
    scaled = {
        name: Split(scaler.transform(s.features).astype(np.float32), s.labels)
        for name, s in splits.items()
    }
    return scaled, scaler


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

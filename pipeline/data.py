"""Datasets and splits: load, split with stratification, corrupt training labels, scale.

A prepared split is one Parquet file per split with feature columns `x0..x{n-1}` and an
integer `label`; the class names and scaler travel in `meta.json` beside them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pipeline.config import DataConfig
from pipeline.errors import DataError

SPLITS = ("train", "val", "test")
LABEL = "label"
FLIPPED = "label_was_flipped"


@dataclass(frozen=True)
class Dataset:
    """Features (n, d) float32 and integer labels (n,) in 0..n_classes-1."""

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    features: np.ndarray
    labels: np.ndarray


def load_dataset(config: DataConfig, project_root: Path) -> Dataset:
    if config.source == "digits":
        return _load_digits()
    return _load_csv(project_root / config.csv_path, config.target_column)


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()  # bundled with scikit-learn: no network
    return Dataset(
        features=digits.data.astype(np.float32),
        labels=digits.target.astype(np.int64),
        class_names=tuple(str(name) for name in digits.target_names),
    )


def _load_csv(path: Path, target_column: str) -> Dataset:
    if not path.is_file():
        raise DataError(
            f"data.csv_path {path.name!r}: no such file at {path}; put the CSV under data/ "
            f"and track it with `dvc add`"
        )
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: the file is empty; it needs a header and rows") from None
    if target_column not in frame.columns:
        raise DataError(
            f"{path.name}: no target column {target_column!r}; set data.target_column to one of "
            f"{', '.join(map(str, frame.columns[:20]))}"
        )
    features = frame.drop(columns=[target_column])
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise DataError(
            f"{path.name}: feature column(s) {', '.join(map(str, non_numeric[:5]))} are not "
            f"numeric; encode them as numbers or drop them"
        )
    if frame.isna().to_numpy().any():
        raise DataError(f"{path.name}: has missing values; fill or drop those rows first")
    codes, classes = pd.factorize(frame[target_column], sort=True)
    if len(classes) < 2:
        raise DataError(f"{path.name}: target column {target_column!r} has a single class")
    return Dataset(
        features=features.to_numpy(dtype=np.float32),
        labels=codes.astype(np.int64),
        class_names=tuple(str(name) for name in classes),
    )


def split_dataset(
    dataset: Dataset,
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
    x, y = dataset.features, dataset.labels
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
            f"add rows or lower data.test_fraction / data.val_fraction / data.train_subset"
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
    meta: dict,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        n_features = split.features.shape[1]
        frame = pd.DataFrame(split.features, columns=[f"x{i}" for i in range(n_features)])
        frame[LABEL] = split.labels
        if name == "train":
            frame[FLIPPED] = flipped
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_split(prepared_dir: Path, name: str) -> Split:
    path = prepared_dir / f"{name}.parquet"
    if not path.is_file():
        raise DataError(f"{path}: prepared split missing; run `dvc repro prepare`")
    frame = pd.read_parquet(path)
    feature_columns = [c for c in frame.columns if c.startswith("x")]
    return Split(
        features=frame[feature_columns].to_numpy(dtype=np.float32),
        labels=frame[LABEL].to_numpy(dtype=np.int64),
    )


def read_meta(prepared_dir: Path) -> dict:
    path = prepared_dir / "meta.json"
    if not path.is_file():
        raise DataError(f"{path}: prepared metadata missing; run `dvc repro prepare`")
    return json.loads(path.read_text())

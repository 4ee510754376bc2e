"""Datasets and splits: load, split with stratification, corrupt training labels, scale.

A prepared split is one Parquet file per split with feature columns `x0..x{n-1}` and an
integer `label`; the class names and scaler travel in `meta.json` beside them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pipeline.config import DataConfig
from pipeline.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
LABEL = "label"
FLIPPED = "label_was_flipped"
MAX_CATEGORIES = 20  # more distinct texts than this is an id or free text, not a category
MAX_DROPPED_SHARE = 0.5  # of a CSV's rows, dropped for missing values before we refuse
MIN_ROWS_PER_CLASS = 3  # one each for train, validation and test


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
    """A user's CSV: one row per example, the label in `target_column`, features elsewhere.

    What a user would expect is done and logged: empty columns are dropped, rows with a
    missing value are dropped (imputing would invent values and leak statistics across the
    splits), text or boolean feature columns with few distinct values are one-hot encoded,
    and labels may be text. Anything else is rejected with one line that says what to fix.
    """
    name = path.name
    frame = _read_csv(path)
    if target_column not in frame.columns:
        columns = list(map(str, frame.columns))
        hint = ""
        if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
            hint = " (the file seems not to be comma-separated; save it with commas)"
        raise DataError(
            f"{name}: no target column {target_column!r}{hint}; set data.target_column to one "
            f"of {', '.join(columns[:20])}"
        )
    if len(frame.columns) < 2:
        raise DataError(f"{name}: only the target column {target_column!r}; add feature columns")
    frame = _drop_missing(frame, target_column, name)
    features = _encode_features(frame.drop(columns=[target_column]), name)
    labels = frame[target_column]
    if pd.api.types.is_float_dtype(labels) and (labels == labels.round()).all():
        labels = labels.astype(np.int64)  # 0.0/1.0 because the column had gaps: classes 0 and 1
    if labels.dtype == object:
        labels = labels.astype(str)  # mixed text and numbers would not sort
    codes, classes = pd.factorize(labels, sort=True)
    if len(classes) < 2:
        raise DataError(
            f"{name}: target column {target_column!r} has a single class ({classes[0]}); "
            f"a classifier needs at least two"
            if len(classes)
            else f"{name}: target column {target_column!r} is empty"
        )
    counts = np.bincount(codes)
    if counts.min() < MIN_ROWS_PER_CLASS:
        rare = str(classes[int(counts.argmin())])
        raise DataError(
            f"{name}: class {rare!r} of {target_column!r} has only {counts.min()} row(s); every "
            f"class needs at least {MIN_ROWS_PER_CLASS} (train, validation and test each need "
            f"one): add rows of that class or remove them"
        )
    log.info(
        "%s: %d rows, %d feature columns, %d classes (%s)",
        name,
        len(codes),
        features.shape[1],
        len(classes),
        ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else ""),
    )
    return Dataset(
        features=features,
        labels=codes.astype(np.int64),
        class_names=tuple(str(c) for c in classes),
    )


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            f"data.csv_path {path.name!r}: no such file at {path}; put the CSV under data/ "
            f"and track it with `dvc add`"
        )
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: the file is empty; it needs a header and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0]
        raise DataError(
            f"{path.name}: not a readable CSV ({detail}); save it as comma-separated UTF-8 text "
            f"with the same number of fields on every line"
        ) from None
    if frame.empty:
        raise DataError(f"{path.name}: has a header but no rows")
    return frame


def _drop_missing(frame: pd.DataFrame, target_column: str, name: str) -> pd.DataFrame:
    """Drop feature columns that are entirely empty, then every row with a missing value."""
    empty = [c for c in frame.columns if c != target_column and frame[c].isna().all()]
    if empty:
        log.info("%s: dropped empty column(s) %s", name, ", ".join(map(str, empty)))
        frame = frame.drop(columns=empty)
        if len(frame.columns) < 2:
            raise DataError(f"{name}: every feature column is empty; fill in the features")
    missing = frame.isna()
    incomplete = missing.any(axis=1)
    if not incomplete.any():
        return frame
    columns = ", ".join(map(str, frame.columns[missing.any(axis=0)][:5]))
    share = incomplete.mean()
    if share > MAX_DROPPED_SHARE:
        raise DataError(
            f"{name}: {incomplete.sum()} of {len(frame)} rows have missing values (in {columns});"
            f" too many to drop: fill them in, or remove the columns that are mostly empty"
        )
    log.info(
        "%s: dropped %d of %d rows with missing values (in %s)",
        name,
        incomplete.sum(),
        len(frame),
        columns,
    )
    return frame.loc[~incomplete].reset_index(drop=True)


def _encode_features(features: pd.DataFrame, name: str) -> np.ndarray:
    """Numbers as they are; booleans as 0/1; text with few distinct values one-hot."""
    parts: list[pd.DataFrame] = []
    for column in features.columns:
        values = features[column]
        if pd.api.types.is_bool_dtype(values):
            parts.append(values.astype(np.float32).to_frame())
        elif pd.api.types.is_numeric_dtype(values):
            if not np.isfinite(values.to_numpy(dtype=np.float64)).all():
                raise DataError(
                    f"{name}: column {column!r} has infinite values; replace them with numbers"
                )
            parts.append(values.to_frame())
        else:
            parts.append(_one_hot(values.astype(str), name))
    return pd.concat(parts, axis=1).to_numpy(dtype=np.float32)


def _one_hot(values: pd.Series, name: str) -> pd.DataFrame:
    column = values.name
    as_numbers = pd.to_numeric(values, errors="coerce")
    if as_numbers.notna().mean() >= 0.5:
        odd = sorted(set(values[as_numbers.isna()]))[:3]
        raise DataError(
            f"{name}: column {column!r} holds numbers but also {', '.join(map(repr, odd))}; "
            f"replace those with numbers or leave the cells empty"
        )
    categories = sorted(values.unique())
    if len(categories) > MAX_CATEGORIES:
        raise DataError(
            f"{name}: column {column!r} has {len(categories)} distinct text values, too many to "
            f"one-hot encode (at most {MAX_CATEGORIES}); drop it or encode it as numbers"
        )
    log.info(
        "%s: one-hot encoded text column %r into %d columns (%s)",
        name,
        column,
        len(categories),
        ", ".join(categories),
    )
    return pd.get_dummies(values, prefix=str(column), prefix_sep="=", dtype=np.float32)


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
    """Write the splits and their metadata into the existing folder `out_dir`."""
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

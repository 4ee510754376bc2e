"""Where the examples come from: scikit-learn's bundled digits, a user's CSV, a folder of
images or an `.npz` of arrays (arrays.py).

A CSV is made usable the way a user would expect (text labels, one-hot text columns,
incomplete rows dropped), each step logged; what cannot be fixed is refused in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.schema import DataConfig
from pipeline.core.errors import DataError
from pipeline.datasets import arrays

log = logging.getLogger(__name__)

MAX_CATEGORIES = 20  # more distinct texts than this is an id or free text, not a category
MAX_DROPPED_SHARE = 0.5  # of a CSV's rows, dropped for missing values before we refuse
MIN_ROWS_PER_CLASS = 3  # one each for train, validation and test


@dataclass(frozen=True)
class Dataset:
    """Features (n, *example shape) float32 and integer labels (n,) in 0..n_classes-1."""

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    incomplete_rows_dropped: int = 0  # of a CSV, for a missing value
    rows_read: int = 0


def load_dataset(config: DataConfig, project_root: Path) -> Dataset:
    if config.source == "digits":
        dataset = _load_digits(as_images=config.shape == "image")
    elif config.source == "csv":
        dataset = _load_csv(project_root / config.csv_path, config.target_column)
    elif config.source == "images":
        path = project_root / config.image_dir
        x, codes, classes = arrays.load_image_folder(
            path, tuple(config.image_size), config.color_mode
        )
        dataset = _checked(x, codes, classes, path.name, "class folder", "add images to it")
    else:
        path = project_root / config.npz_path
        x, y = arrays.load_npz(path)
        if config.shape == "image" and x.ndim not in (3, 4):
            raise DataError(
                f"data.shape = 'image': {path.name}'s x has shape {x.shape}, not examples x "
                f"height x width [x channels]; reshape x or leave data.shape null"
            )
        x = x[..., None] if config.shape == "image" and x.ndim == 3 else x
        if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
            y = y.astype(np.int64)  # 0.0/1.0 are classes 0 and 1
        codes, classes = pd.factorize(y.astype(str) if y.dtype.kind in "USO" else y, sort=True)
        names = tuple(str(c) for c in classes)
        dataset = _checked(x, codes.astype(np.int64), names, path.name, "label", "add examples")
    if config.shape == "flat":
        features = dataset.features
        dataset = Dataset(features.reshape(len(features), -1), dataset.labels, dataset.class_names)
    return dataset


def _checked(x, codes, classes, name: str, what: str, fix: str) -> Dataset:
    """The classes of an image folder or .npz, refused if a classifier cannot split them."""
    if len(classes) < 2:
        raise DataError(f"{name}: a single class ({', '.join(classes)}); a classifier needs two")
    counts = np.bincount(codes, minlength=len(classes))
    if counts.min() < MIN_ROWS_PER_CLASS:
        rare = classes[int(counts.argmin())]
        raise DataError(
            f"{name}: {what} {rare!r} has only {counts.min()} example(s); every class needs at "
            f"least {MIN_ROWS_PER_CLASS} (train, validation and test each need one): {fix}"
        )
    log.info("%s: %d examples of shape %s, %d classes", name, len(codes), x.shape[1:], len(classes))
    return Dataset(features=x, labels=codes, class_names=tuple(classes))


def _load_digits(as_images: bool = False) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()  # bundled with scikit-learn: no network
    # `images` is `data` unflattened (8x8, row by row), so both give the same numbers.
    features = digits.images[..., None] if as_images else digits.data
    return Dataset(
        features=features.astype(np.float32),
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
    rows_read = len(frame)
    frame = _drop_missing(frame, target_column, name)
    features = _encode_features(frame.drop(columns=[target_column]), name)
    labels = frame[target_column]
    _refuse_regression_target(labels, name)
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
        incomplete_rows_dropped=rows_read - len(frame),
        rows_read=rows_read,
    )


def _refuse_regression_target(labels: pd.Series, name: str) -> None:
    """Numbers with fractions, or more distinct numbers than a table has classes, are a
    quantity to predict: training a classifier on them would be silently meaningless."""
    if pd.api.types.is_bool_dtype(labels) or not pd.api.types.is_numeric_dtype(labels):
        return
    distinct = labels.nunique()
    fractional = not (labels == labels.round()).all()
    if fractional or distinct > MAX_CATEGORIES:
        raise DataError(
            f"{name}: target column {labels.name!r} holds {distinct} distinct numbers"
            f"{' with fractions' if fractional else ''}: it looks like a regression target, and"
            f" the lab trains classifiers; set data.target_column to a column of class labels"
            f" (numbers that are class codes: write them as text, e.g. c{int(labels.iloc[0])})"
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

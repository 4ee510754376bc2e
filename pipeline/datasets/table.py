"""A user's CSV as examples: one row per example, the target in `data.target_column`.

A CSV is made usable the way a user would expect (columns named in `data.drop_columns` left
out, text labels, one-hot text columns, incomplete rows dropped), each step logged; what
cannot be fixed is refused in one line. Its task is the target's (targets.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.core.preparation import BOOLEAN, CATEGORY, NUMBER, Column, encode_table
from pipeline.core.task import REGRESSION
from pipeline.datasets import targets
from pipeline.datasets.examples import MIN_ROWS_PER_CLASS, Dataset
from pipeline.datasets.targets import MAX_CATEGORIES

log = logging.getLogger(__name__)

MAX_DROPPED_SHARE = 0.5  # of a CSV's rows, dropped for missing values before we refuse


def load_csv(
    path: Path, target_column: str, task: str = "auto", drop_columns: Sequence[str] = ()
) -> Dataset:
    """A user's CSV: one row per example, the target in `target_column`, features elsewhere.

    What a user would expect is done and logged: the columns in `drop_columns` are left out,
    empty columns are dropped, rows with a missing value are dropped (imputing would invent
    values and leak statistics across the splits), text or boolean feature columns with few
    distinct values are one-hot encoded, and labels may be text. `task` is data.task (auto:
    the target's own, targets.py). Anything else is rejected with one line that says what
    to fix.
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
    all_columns = [str(c) for c in frame.columns]
    frame = _drop_columns(frame, drop_columns, target_column, name)
    if len(frame.columns) < 2:
        raise DataError(f"{name}: only the target column {target_column!r}; add feature columns")
    rows_read = len(frame)
    frame = _drop_missing(frame, target_column, name)
    feature_frame = frame.drop(columns=[target_column])
    columns = _feature_columns(feature_frame, name)
    features = encode_table(feature_frame, columns)
    labels = frame[target_column]
    table = {
        "columns": columns,
        "target_column": target_column,
        "ignored_columns": tuple(
            c for c in all_columns if c != target_column and c not in frame.columns
        ),
    }
    if targets.csv_task(labels, task) == REGRESSION:
        target = targets.regression_target(
            labels.to_numpy(), name, f"target column {target_column!r}", task
        )
        log.info(
            "%s: %d rows, %d feature columns, a quantity to predict: %r (%d distinct values,"
            " %g to %g)",
            name, len(target), features.shape[1], target_column, len(np.unique(target)),
            target.min(), target.max(),
        )  # fmt: skip
        return Dataset(
            features=features,
            labels=target,
            class_names=(),
            incomplete_rows_dropped=rows_read - len(frame),
            rows_read=rows_read,
            task=REGRESSION,
            **table,
        )
    dataset = _classes(features, labels, name, rows_read - len(frame), rows_read)
    return dataclasses.replace(dataset, **table)


def _classes(features, labels: pd.Series, name: str, dropped: int, rows_read: int) -> Dataset:
    """A CSV's target column as classes 0..n_classes-1 (names sorted), refused when a
    classifier cannot split them."""
    target_column = labels.name
    if pd.api.types.is_float_dtype(labels) and (labels == labels.round()).all():
        labels = labels.astype(np.int64)  # 0.0/1.0 because the column had gaps: classes 0 and 1
    if labels.dtype == object:
        labels = labels.astype(str)  # mixed text and numbers would not sort
    codes, classes = pd.factorize(labels, sort=True)
    if len(classes) < 2:
        raise DataError(
            f"{name}: target column {target_column!r} holds a single value ({classes[0]}): "
            f"nothing to learn (a classifier needs two classes, a regression a "
            f"quantity that varies); choose another data.target_column"
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
        label_values=tuple(c.item() if hasattr(c, "item") else c for c in classes),
        incomplete_rows_dropped=dropped,
        rows_read=rows_read,
    )


def _drop_columns(
    frame: pd.DataFrame, drop_columns: Sequence[str], target_column: str, name: str
) -> pd.DataFrame:
    """`frame` without the columns of data.drop_columns, before anything else looks at them
    (a mostly empty column left out drops no rows)."""
    columns = list(map(str, frame.columns))
    for column in drop_columns:
        if column == target_column:
            raise DataError(
                f"{name}: data.drop_columns has the target column {column!r}; remove it from"
                f" data.drop_columns (or set data.target_column to another column)"
            )
        if column not in columns:
            raise DataError(
                f"{name}: data.drop_columns has {column!r}, which is not a column; remove it or"
                f" use one of {', '.join(c for c in columns[:20] if c != target_column)}"
            )
    if not drop_columns:
        return frame
    dropped = list(dict.fromkeys(drop_columns))
    log.info("%s: left out column(s) %s (data.drop_columns)", name, ", ".join(dropped))
    return frame.drop(columns=dropped)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            f"data.csv_path {path.name!r}: no such file at {path}; put the CSV under data/ "
            f"and track it with `dvc add`"
        )
    frame = read_table(path)
    if frame.empty:
        raise DataError(f"{path.name}: has a header but no rows")
    return frame


def read_table(path: Path) -> pd.DataFrame:
    """A CSV as the lab reads it (training rows here, new rows in pipeline/predict.py: the
    same column types), or a one-line DataError saying how to save it."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path.name}: the file is empty; give a header and at least one row"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0]
        raise DataError(
            f"{path.name}: not a readable CSV ({detail}); save it as comma-separated UTF-8 text "
            f"with the same number of fields on every line"
        ) from None


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


def _feature_columns(features: pd.DataFrame, name: str) -> tuple[Column, ...]:
    """Each feature column's kind: numbers as they are; booleans as 0/1; text with few
    distinct values one-hot (its categories learned from every row of the table)."""
    columns: list[Column] = []
    for column in features.columns:
        values = features[column]
        if pd.api.types.is_bool_dtype(values):
            columns.append(Column(str(column), BOOLEAN))
        elif pd.api.types.is_numeric_dtype(values):
            if not np.isfinite(values.to_numpy(dtype=np.float64)).all():
                raise DataError(
                    f"{name}: column {column!r} has infinite values; replace them with numbers"
                )
            columns.append(Column(str(column), NUMBER))
        else:
            columns.append(Column(str(column), CATEGORY, _categories(values.astype(str), name)))
    return tuple(columns)


def _categories(values: pd.Series, name: str) -> tuple[str, ...]:
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
            f"one-hot encode (at most {MAX_CATEGORIES}); leave it out with data.drop_columns: "
            f"[{column}], or encode it as numbers"
        )
    log.info(
        "%s: one-hot encoded text column %r into %d columns (%s)",
        name,
        column,
        len(categories),
        ", ".join(categories),
    )
    return tuple(categories)

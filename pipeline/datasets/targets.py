"""Which task a source's target asks for (`data.task`), and what a regression target must be.

`data.task: auto` decides from the target. A CSV's column of numbers with fractions, or of
more than MAX_CATEGORIES distinct numbers, is a quantity: regression. Whole numbers with at
most MAX_CATEGORIES distinct values, text and booleans are classes: classification. An image
folder or an `.npz` is classification unless `data.task: regression` is declared (an `.npz`
then holds `y` as numbers); the digits are classification (config/data_keys.py refuses
regression for them and for image folders). A declared task is taken as given, except that
a regression target must be numbers with at least MIN_REGRESSION_VALUES distinct values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.core.task import CLASSIFICATION, REGRESSION

# More distinct values than this: a quantity when it is the target, an id or free text when
# it is a text feature (too many to one-hot encode).
MAX_CATEGORIES = 20
# Fewer distinct values than this are levels (a yes/no, a rating from 1 to 4), which a
# classifier models; a regression's quantile bins and RMSE need a quantity that varies.
MIN_REGRESSION_VALUES = 5


def is_quantity(target: pd.Series) -> bool:
    """Numbers with fractions, or more distinct numbers than a table has classes."""
    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
        return False
    return _has_fractions(target.to_numpy()) or target.nunique() > MAX_CATEGORIES


def csv_task(target: pd.Series, declared: str) -> str:
    """The task for a CSV's target column: `declared`, or under `auto` the target's own."""
    if declared != "auto":
        return declared
    return REGRESSION if is_quantity(target) else CLASSIFICATION


def regression_target(values: np.ndarray, name: str, what: str, declared: str) -> np.ndarray:
    """`values` as float64, or a one-line DataError naming the key and the fix when they are
    not a quantity a regression can learn. `name`: the file; `what`: the target as the user
    knows it (`target column 'price'`, `y`); `declared`: data.task as set."""
    values = np.asarray(values)
    key = f"data.task = {declared!r}"
    if values.dtype.kind == "b" or not np.issubdtype(values.dtype, np.number):
        example = values[0] if len(values) else ""
        raise DataError(
            f"{name}: {key} but {what} holds {'booleans' if values.dtype.kind == 'b' else 'text'}"
            f" (e.g. {str(example)!r}), not a quantity; set data.task: classification, or give"
            f" a target column of numbers"
        )
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(
            f"{name}: {what} has NaN or infinite values; replace them with numbers (a CSV's"
            f" rows with an empty target are dropped)"
        )
    distinct = np.unique(values)
    if len(distinct) == 1:
        raise DataError(
            f"{name}: {what} is constant ({distinct[0]:g} in every row): there is nothing to"
            f" predict; choose a target that varies (data.target_column, or the .npz's y)"
        )
    if len(distinct) < MIN_REGRESSION_VALUES:
        fractions = " with fractions" if _has_fractions(values) else ""
        why = "data.task: auto took the fractions for a quantity" if declared == "auto" else key
        raise DataError(
            f"{name}: {what} holds {len(distinct)} distinct numbers{fractions}, fewer than the"
            f" {MIN_REGRESSION_VALUES} a regression target needs ({why}); set data.task:"
            f" classification to treat them as classes"
        )
    return values


def _has_fractions(values: np.ndarray) -> bool:
    values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    return bool((values != np.round(values)).any())

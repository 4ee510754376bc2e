"""What every source gives `prepare`: examples and their labels or target (sources.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.preparation import Column
from pipeline.core.task import CLASSIFICATION

MIN_ROWS_PER_CLASS = 3  # one each for train, validation and test


@dataclass(frozen=True)
class Dataset:
    """Features (n, *example shape) float32 and labels (n,): classification's integer labels
    in 0..n_classes-1, or regression's target (float64, in its own units; no class names)."""

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    incomplete_rows_dropped: int = 0  # of a CSV, for a missing value
    rows_read: int = 0
    task: str = CLASSIFICATION  # core/task.py: resolved from data.task (targets.py)
    # Classification: the user's label of each class, as read (numbers stay numbers);
    # empty: the class names are the labels.
    label_values: tuple = ()
    # A table's feature columns as the model takes them (core/preparation.py); the target
    # column, and the table's columns that are not features. Empty for array sources.
    columns: tuple[Column, ...] = ()
    target_column: str | None = None
    ignored_columns: tuple[str, ...] = ()

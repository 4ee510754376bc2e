"""Choosing L2 from a sweep: which layer needs it, whether more data would do, what to try next.

Works on the report's sweep table (one row per entry, ranked on validation) and the entries'
specs; imports no TensorFlow. Every choice here (the best rate, the best layer, the best rate
at a training-set size) is made on validation error, its mean over seeds when there are
several; test error is only reported (the data-size curves plot it, as the issue asks).

"Cannot be told apart" is a paired test when evaluate kept the entries' predictions on the
validation rows (`HeldOut`): the exact McNemar test at p >= 0.05 (statistics.py). Without
them (older outputs, hand-made tables) it falls back to table.tied_with_best's rule: within
one validation sample, or with repeats within the larger of the two seed spreads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.choosing.statistics import ALPHA, mcnemar_exact
from pipeline.config.entries import EntrySpec

ALL = "all"
# Figures are written with 5 significant digits: differences this small are rounding.
ROUNDING = 1e-4


@dataclass(frozen=True)
class Point:
    """One trained entry placed on the choosing axes."""

    entry: str
    rate: float
    layer: str  # ALL, or the one layer that carries the rate
    rows: int | None  # training-set size; None: data's training split
    noise: float | None  # label-noise share; None with rows None
    val: float  # mean over seeds when there are several
    val_std: float  # 0 for one seed
    test: float
    test_std: float


def _figure(row: pd.Series, name: str) -> tuple[float, float]:
    if f"{name}_mean" in row.index and pd.notna(row.get(f"{name}_mean")):
        return float(row[f"{name}_mean"]), float(row[f"{name}_std"])
    return float(row[name]), 0.0


def place(
    entries: Sequence[EntrySpec],
    table: pd.DataFrame,
    default_rows: int,
    default_noise: float,
    pool_rows: int,
) -> list[Point]:
    """The entries that sit on a rate axis: pure L2 (no weight decay), not diverged, with one
    rate on every layer or on exactly one layer. In the table's (ranked) order."""
    by_name = {e.name: e for e in entries}
    points = []
    for _, row in table.iterrows():
        entry = by_name.get(row["entry"])
        if entry is None or not entry.is_pure_l2 or pd.isna(row["val_error"]):
            continue
        nonzero = [(layer, rate) for layer, rate in entry.layer_rates if rate > 0]
        if entry.uniform_rate is not None:
            layer, rate = ALL, entry.uniform_rate
        elif len(nonzero) == 1:
            layer, rate = nonzero[0]
        else:
            continue
        rows, noise = None, None
        if entry.uses_pool:
            rows = entry.train_size or default_rows or pool_rows
            noise = default_noise if entry.label_noise is None else entry.label_noise
        val, val_std = _figure(row, "val_error")
        if pd.notna(row.get("cv_error_mean")):
            # Folds: the mean CV error; the paired test on the pooled held-out rows judges it.
            val, val_std = float(row["cv_error_mean"]), 0.0
        test, test_std = _figure(row, "test_error")
        points.append(Point(entry.name, rate, layer, rows, noise, val, val_std, test, test_std))
    return points


@dataclass(frozen=True)
class HeldOut:
    """The validation labels and each entry's predicted class per validation row (its base
    seed's model): the paired outcomes the tests compare."""

    labels: np.ndarray
    predicted: Mapping[str, np.ndarray]

    def has(self, *entries: str) -> bool:
        return all(entry in self.predicted for entry in entries)

    def wrong(self, entry: str) -> np.ndarray:
        return self.predicted[entry] != self.labels

    def p_value(self, a: str, b: str) -> float:
        """Exact McNemar p of entries `a` and `b` on the validation rows."""
        return mcnemar_exact(self.wrong(a), self.wrong(b))[2]


def indistinguishable(a: Point, b: Point, val_rows: int, held_out: HeldOut | None = None) -> bool:
    """Whether two points' validation errors cannot be told apart (see module docstring)."""
    if held_out is not None and held_out.has(a.entry, b.entry):
        return held_out.p_value(a.entry, b.entry) >= ALPHA
    if a.val_std or b.val_std:
        return abs(a.val - b.val) <= max(a.val_std, b.val_std) + ROUNDING
    return round(abs(a.val - b.val) * val_rows) <= 1


def margin_words(a: Point, b: Point, val_rows: int, held_out: HeldOut | None = None) -> str:
    if held_out is not None and held_out.has(a.entry, b.entry):
        return f"chance (exact McNemar p = {held_out.p_value(a.entry, b.entry):.2g})"
    if a.val_std or b.val_std:
        return f"the seed spread ({max(a.val_std, b.val_std):.3f})"
    return f"one validation sample (1/{val_rows} = {1 / val_rows:.3f})"


def unique_rates(points: Sequence[Point]) -> dict[float, Point]:
    """rate -> its first point (the table is ranked, so the better of duplicates)."""
    found: dict[float, Point] = {}
    for point in points:
        found.setdefault(point.rate, point)
    return found

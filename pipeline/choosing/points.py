"""Choosing L2 from a sweep: which layer needs it, whether more data would do, what to try next.

Works on the report's sweep table (one row per entry, ranked on validation) and the entries'
specs; imports no TensorFlow. Every choice here (the best rate, the best layer, the best rate
at a training-set size) is made on the task's validation figure (error, or RMSE in the
target's units), its mean over seeds when there are several; the test figure is only
reported (the data-size curves plot it, as the issue asks).

Whether two points can be told apart is the judge's question (judge.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.choosing.judge import Judge
from pipeline.config.entries import EntrySpec
from pipeline.core.task import Task

ALL = "all"
# The rate a point sits at: `l2`, or fine-tuning's `l2_sp` (toward the start).
L2 = "l2"
L2_SP = "l2_sp"
FROM_START = "the start model"  # start_label of an entry fine-tuned with every layer trained


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
    axis: str = L2
    start: str = ""  # where its entry starts (start_label); "" without a start model


def start_label(entry: EntrySpec) -> str:
    """Where the entry starts, in words: "" for a fresh initialisation with every layer
    trained (every entry of a sweep without a start model)."""
    tuning = entry.tuning
    frozen = f"frozen {', '.join(tuning.frozen)}" if tuning.frozen else ""
    start = FROM_START if tuning.from_start else ("scratch" if frozen else "")
    return ", ".join(part for part in (start, frozen) if part)


def _axis(entry: EntrySpec) -> tuple[str, tuple[tuple[str, float], ...]] | None:
    """The rate axis of an entry and its rates there: pure `l2`, or `l2_sp` alone (no `l2`,
    no decay); None for the others."""
    if entry.is_pure_l2:
        return L2, entry.layer_rates
    if entry.weight_decay or any(entry.rates):
        return None
    return L2_SP, entry.tuning.sp_rates


def _figure(row: pd.Series, name: str) -> tuple[float, float]:
    if f"{name}_mean" in row.index and pd.notna(row.get(f"{name}_mean")):
        return float(row[f"{name}_mean"]), float(row[f"{name}_std"])
    return float(row[name]), 0.0


def _cv_figure(mean: float, task: Task) -> float:
    return math.sqrt(mean) if task.is_regression else mean


def place(
    entries: Sequence[EntrySpec],
    table: pd.DataFrame,
    default_rows: int,
    default_noise: float,
    pool_rows: int,
    task: Task,
) -> list[Point]:
    """The entries that sit on a rate axis: pure L2 (no weight decay), or fine-tuning's
    `l2_sp` alone (axis L2_SP), not diverged, with one rate on every layer (of those with a
    start, for `l2_sp`) or on exactly one layer. In the table's (ranked) order. With folds a
    point's validation figure is the mean over folds of the choosing figure: the CV error, or
    for regression the root of the mean CV MSE, so that the axis stays in RMSE's units (the
    same order as the MSE the decision ranks on)."""
    by_name = {e.name: e for e in entries}
    points = []
    for _, row in table.iterrows():
        entry = by_name.get(row["entry"])
        axis = None if entry is None else _axis(entry)
        if axis is None or pd.isna(row[task.val_figure]):
            continue
        axis, layer_rates = axis
        nonzero = [(layer, rate) for layer, rate in layer_rates if rate > 0]
        if len({rate for _, rate in layer_rates}) == 1:
            layer, rate = ALL, layer_rates[0][1]
        elif len(nonzero) == 1:
            layer, rate = nonzero[0]
        else:
            continue
        rows, noise = None, None
        if entry.uses_pool:
            rows = entry.train_size or default_rows or pool_rows
            noise = default_noise if entry.label_noise is None else entry.label_noise
        val, val_std = _figure(row, task.val_figure)
        if pd.notna(row.get(task.cv_mean)):
            # Folds: the mean CV figure; the paired test on the pooled held-out rows judges it.
            val, val_std = _cv_figure(float(row[task.cv_mean]), task), 0.0
        test, test_std = _figure(row, task.test_figure)
        points.append(Point(entry.name, rate, layer, rows, noise, val, val_std, test, test_std,
                            axis, start_label(entry)))  # fmt: skip
    return points


def unique_rates(points: Sequence[Point]) -> dict[float, Point]:
    """rate -> its first point (the table is ranked, so the better of duplicates)."""
    found: dict[float, Point] = {}
    for point in points:
        found.setdefault(point.rate, point)
    return found


@dataclass(frozen=True)
class Versus:
    """One point against another on the same held-out rows, by the judge."""

    other: Point
    p_value: float
    apart: bool


def versus(judge: Judge, a: Point, b: Point) -> Versus:
    p = judge.p_value(a.entry, b.entry)
    return Versus(b, p, p < judge.alpha)

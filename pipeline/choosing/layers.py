"""Which layer needs L2: validation error of L2 on one layer alone against all layers, by rate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.choosing.judge import Judge
from pipeline.choosing.points import ALL, Point, Versus, versus

# layer_heatmap.csv, the data of `dvc.yaml`'s heatmap plot. Its column names are the plot's
# and stay for both tasks: `val_error` holds the task's validation figure (a regression's RMSE).
HEATMAP_COLUMNS = ["layer", "l2_rate", "log10_rate", "val_error"]


def layer_grid(points: Sequence[Point], layers: Sequence[str]) -> pd.DataFrame | None:
    """Validation error per (layer, rate) on data's training split: rows `layers` and `all`,
    one column per rate; rate 0 (no penalty anywhere) fills its column for every row. None
    without any single-layer entry."""
    default = [p for p in points if p.rows is None]
    if not any(p.layer != ALL for p in default):
        return None
    rates = sorted({p.rate for p in default})
    grid = pd.DataFrame(np.nan, index=[*layers, ALL], columns=rates)
    for point in reversed(default):  # the better of duplicates is written last
        if point.rate == 0:
            grid[0.0] = point.val
        elif point.layer in grid.index:
            grid.at[point.layer, point.rate] = point.val
    return grid


def tied_cells(
    points: Sequence[Point], grid: pd.DataFrame, judge: Judge
) -> frozenset[tuple[str, float]]:
    """The (layer, rate) cells that cannot be told apart from the best cell (the best one
    included)."""
    default = [p for p in points if p.rows is None and (p.layer in grid.index or p.rate == 0)]
    best = min(default, key=lambda p: p.val)
    found = set()
    for point in default:
        if best is point or not judge.apart(best.entry, point.entry):
            layers = grid.index if point.rate == 0 else [point.layer]
            found |= {(layer, point.rate) for layer in layers}
    return frozenset(found)


def layer_heatmap_data(grid: pd.DataFrame) -> pd.DataFrame:
    zero = math.floor(math.log10(min([r for r in grid.columns if r > 0] or [0.1]))) - 1
    rows = [
        {
            "layer": layer,
            "l2_rate": rate,
            "log10_rate": math.log10(rate) if rate > 0 else zero,
            "val_error": grid.at[layer, rate],
        }
        for layer in grid.index
        for rate in grid.columns
        if pd.notna(grid.at[layer, rate])
    ]
    return pd.DataFrame(rows, columns=HEATMAP_COLUMNS)


@dataclass(frozen=True)
class LayerVerdict:
    """Which layer's L2 matters most on data's training split, and against what."""

    best_of: dict[str, Point]  # each layer alone (then ALL): its best rate's point
    zero: Point | None  # rate 0
    top: Point  # the best single layer alone
    ties: tuple[str, ...]  # other layers alone with exactly top's value
    others: tuple[Point, ...]  # the other layers alone, in layer order
    runner: Versus | None  # top against the next-best layer alone
    top_is_largest: bool  # top's rate is the largest tried on its layer
    vs_zero: Versus | None
    vs_all: Versus | None  # top against the best rate on all layers


def layer_verdict(
    points: Sequence[Point], layers: Sequence[str], judge: Judge
) -> LayerVerdict | None:
    """None without a single-layer entry."""
    default = [p for p in points if p.rows is None]
    zero = next((p for p in default if p.rate == 0), None)
    best_of = {}
    for layer in [*layers, ALL]:
        candidates = [p for p in default if p.layer == layer and p.rate > 0]
        if candidates:
            best_of[layer] = min(candidates, key=lambda p: p.val)
    alone = {layer: p for layer, p in best_of.items() if layer != ALL}
    if not alone:
        return None
    top = min(alone.values(), key=lambda p: p.val)
    others = tuple(p for p in alone.values() if p is not top)
    runner = min(others, key=lambda p: p.val) if others else None
    largest = max((p.rate for p in default if p.layer == top.layer), default=0.0)
    everything = best_of.get(ALL)
    return LayerVerdict(
        best_of=best_of,
        zero=zero,
        top=top,
        ties=tuple(layer for layer, p in alone.items() if p is not top and p.val == top.val),
        others=others,
        runner=versus(judge, top, runner) if runner else None,
        top_is_largest=top.rate == largest,
        vs_zero=versus(judge, top, zero) if zero else None,
        vs_all=versus(judge, top, everything) if everything else None,
    )

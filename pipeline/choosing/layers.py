"""Which layer needs L2: validation error of L2 on one layer alone against all layers, by rate."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.choosing.points import (
    ALL,
    HeldOut,
    Point,
    indistinguishable,
    margin_words,
)

# layer_heatmap.csv, the data of `dvc.yaml`'s heatmap plot.
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
    points: Sequence[Point], grid: pd.DataFrame, val_rows: int, held_out: HeldOut | None
) -> set[tuple[str, float]]:
    """The (layer, rate) cells that cannot be told apart from the best cell (the best one
    included); empty without held-out predictions."""
    if held_out is None:
        return set()
    default = [p for p in points if p.rows is None and (p.layer in grid.index or p.rate == 0)]
    best = min(default, key=lambda p: p.val)
    found = set()
    for point in default:
        if indistinguishable(best, point, val_rows, held_out):
            layers = grid.index if point.rate == 0 else [point.layer]
            found |= {(layer, point.rate) for layer in layers}
    return found


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


def layer_heatmap_figure(grid: pd.DataFrame, tied: set[tuple[str, float]] = frozenset()) -> Figure:
    fig = Figure(figsize=(1.2 * len(grid.columns) + 2.4, 0.6 * len(grid.index) + 1.6))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [f"{r:g}" for r in grid.columns])
    ax.set_yticks(range(len(grid.index)), [f"{layer} alone" if layer != ALL else "all layers"
                                          for layer in grid.index])  # fmt: skip
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if not math.isnan(value):
            # ≈: this cell cannot be told apart from the best one (paired test).
            mark = " ≈" if (grid.index[i], grid.columns[j]) in tied else ""
            ax.text(j, i, f"{value:.3f}{mark}", ha="center", va="center", color="white",
                    fontsize=9)  # fmt: skip
    ax.set_xlabel("Keras L2 rate (0 = no penalty)")
    ax.set_title("Validation error: which layer's L2 matters")
    fig.colorbar(image, ax=ax, label="validation error")
    return fig


def layer_verdict(
    points: Sequence[Point], layers: Sequence[str], val_rows: int, held_out: HeldOut | None = None
) -> list[str]:
    """Markdown lines: which layer's L2 matters most, and whether it alone matches all layers."""
    default = [p for p in points if p.rows is None]
    zero = next((p for p in default if p.rate == 0), None)
    best_of = {}
    for layer in [*layers, ALL]:
        candidates = [p for p in default if p.layer == layer and p.rate > 0]
        if candidates:
            best_of[layer] = min(candidates, key=lambda p: p.val)
    alone = {layer: p for layer, p in best_of.items() if layer != ALL}
    if not alone:
        return []
    lines = [
        "| L2 on | best rate | val error | vs rate 0 |",
        "|---|---|---|---|",
    ]
    for layer, p in best_of.items():
        gain = f"{p.val - zero.val:+.3f}" if zero else ""
        spread = f" ± {p.val_std:.3f}" if p.val_std else ""
        label = "all layers" if layer == ALL else f"{layer} alone"
        lines.append(f"| {label} | {p.rate:g} | {p.val:.3f}{spread} | {gain} |")
    top = min(alone.values(), key=lambda p: p.val)
    base = f" (rate 0: {zero.val:.3f})" if zero else ""
    ties = [layer for layer, p in alone.items() if p is not top and p.val == top.val]
    tie = f" (tied with {', '.join(ties)})" if ties else ""
    text = [
        "",
        f"**{top.layer}'s L2 matters most**{tie}: alone, at rate {top.rate:g}, it brings the "
        f"validation error to {top.val:.3f}{base}; the other layers alone reach "
        + ", ".join(f"{p.val:.3f} ({layer})" for layer, p in alone.items() if p is not top)
        + ".",
    ]
    others = [p for p in alone.values() if p is not top]
    if others:
        runner = min(others, key=lambda p: p.val)
        margin = margin_words(top, runner, val_rows, held_out)
        if indistinguishable(top, runner, val_rows, held_out):
            text.append(f"{top.layer} and {runner.layer} cannot be told apart (within {margin}).")
        else:
            text.append(f"It beats the next layer, {runner.layer}, by more than {margin}.")
    largest = max((p.rate for p in default if p.layer == top.layer), default=0.0)
    if top.rate == largest:
        text.append(
            f"{top.rate:g} is the largest rate tried on {top.layer} alone: its best rate may be "
            f"higher (add larger rates to the grid)."
        )
    if zero is not None and indistinguishable(top, zero, val_rows, held_out):
        margin = margin_words(top, zero, val_rows, held_out)
        text.append(
            f"No layer's L2 helps by more than {margin}: on this model and data the layers "
            f"cannot be ranked."
        )
    everything = best_of.get(ALL)
    if everything is not None:
        margin = margin_words(top, everything, val_rows, held_out)
        if indistinguishable(top, everything, val_rows, held_out):
            verdict = (
                f"Regularizing {top.layer} alone is **as good as** all layers ({everything.val:.3f}"
                f" at {everything.rate:g}): the difference is within {margin}."
            )
        elif top.val < everything.val:
            verdict = (
                f"Regularizing {top.layer} alone is **better than** all layers "
                f"({everything.val:.3f} at {everything.rate:g}) by more than {margin}."
            )
        else:
            verdict = (
                f"Regularizing {top.layer} alone is **not as good as** all layers "
                f"({everything.val:.3f} at {everything.rate:g}): {top.val - everything.val:.3f} "
                f"worse, more than {margin}."
            )
        text.append(verdict)
    return [*lines, *text]

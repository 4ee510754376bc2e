"""The choosing figures (Matplotlib), drawn from choosing.Analysis: the layer heatmap, the
data-size curves and the bracket of next rates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.choosing import ALL, Analysis
from pipeline.choosing.next_rates import Bracket
from pipeline.choosing.points import L2_SP
from pipeline.core.task import Task
from pipeline.reporting.plots import reference_line


def figures(
    analysis: Analysis,
    baseline: float | None = None,
    test_baselines: dict | None = None,
    *,
    task: Task,
) -> dict[str, Figure]:
    """The PNGs by file stem; a question the sweep cannot answer draws none. `baseline`: the
    trivial baseline's figure (majority class's error, or training mean's RMSE) on what the
    grid and the bracket show (validation, or mean CV with folds), on data's training split;
    `test_baselines`: entry -> its test figure, of the entry's own training set (the
    data-size curves)."""
    found = {}
    if analysis.grid is not None:
        found["layer_heatmap"] = layer_heatmap_figure(
            analysis.grid, analysis.tied_cells, baseline, task=task
        )
    if not analysis.curves.empty:
        found["error_vs_train_size"] = size_figure(analysis.curves, test_baselines, task=task)
    if analysis.bracket is not None:
        found["next_rates"] = next_rates_figure(analysis.bracket, baseline, task=task)
    return found


def layer_heatmap_figure(
    grid: pd.DataFrame,
    tied: set[tuple[str, float]] = frozenset(),
    baseline: float | None = None,
    *,
    task: Task,
) -> Figure:
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
    word = task.word
    ax.set_title(f"Validation {word}: which layer's L2 matters")
    bar = fig.colorbar(image, ax=ax, label=f"validation {word}")
    if baseline is not None:
        low, high = image.get_clim()
        where = "red line on the scale" if low <= baseline <= high else (
            "above the scale" if baseline > high else "below the scale")  # fmt: skip
        if low <= baseline <= high:  # where a cell's colour would mean "learned nothing"
            bar.ax.axhline(baseline, color="red", lw=2)
        shown = f"{baseline:.4g}" if task.is_regression else f"{baseline:.3f}"
        ax.set_title(f"{ax.get_title()}\n({task.trivial}: {shown}, {where})",
                     fontsize="medium")  # fmt: skip
    return fig


def size_figure(
    curves: pd.DataFrame, test_baselines: dict | None = None, *, task: Task
) -> Figure:
    word = task.word
    fig = Figure(figsize=(6.8, 4.4), layout="constrained")
    ax = fig.add_subplot()
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for color, (noise, group) in zip(colors * 4, curves.groupby("noise", sort=True), strict=False):
        for series, style in (("rate 0", "-"), ("best rate", "--")):
            line = group[group["series"] == series].sort_values("train_size")
            if line.empty:
                continue
            ax.errorbar(
                line["train_size"],
                line["test_error"],
                yerr=line["test_error_std"] if line["test_error_std"].any() else None,
                color=color,
                ls=style,
                marker="o",
                capsize=3,
                label=f"{series}, label noise {noise:g}",
            )
            if series == "best rate":
                for row in line.itertuples():
                    ax.annotate(
                        f"{row.l2_rate:g}",
                        (row.train_size, row.test_error),
                        textcoords="offset points",
                        xytext=(4, -10),
                        fontsize=7,
                        color=color,
                    )
    if test_baselines:
        # Each size is its own training set, whose majority class may differ.
        for i, (noise, group) in enumerate(curves.groupby("noise", sort=True)):
            sized = group.drop_duplicates("train_size").sort_values("train_size")
            ax.plot(
                sized["train_size"],
                sized["entry"].map(test_baselines),
                color=colors[i % len(colors)],
                ls=":",
                marker="x",
                label=f"{task.trivial}, label noise {noise:g}",
            )
    ax.set_xscale("log")
    sizes = sorted(curves["train_size"].unique())
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training-set size (rows, log scale; nested subsets)")
    ax.set_ylabel(f"test {word}")
    ax.set_title(f"Test {word} vs training-set size: rate 0 vs the best rate on validation")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def next_rates_figure(
    bracket: Bracket, baseline: float | None = None, *, task: Task
) -> Figure:
    """Mean validation figure (± seed spread) vs rate, all layers on data's training split,
    with the best rate circled and the proposed rates as dotted lines (rate 0 a decade
    below)."""
    word = task.word
    tried = {p.rate: p for p in bracket.tried}
    best, proposed = bracket.best, list(bracket.proposed)
    positive = [r for r in tried if r > 0] + proposed
    zero = math.floor(math.log10(min(positive))) - 1 if positive else -1

    def x(rate: float) -> float:
        return math.log10(rate) if rate > 0 else zero

    rates = sorted(tried)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.errorbar(
        [x(r) for r in rates],
        [tried[r].val for r in rates],
        yerr=[tried[r].val_std for r in rates] if any(p.val_std for p in tried.values()) else None,
        marker="o",
        capsize=3,
        label=f"validation {word} (tried)",
    )
    ax.plot([x(best.rate)], [best.val], "o", ms=14, mfc="none", color="tab:red", label="best")
    for i, rate in enumerate(proposed):
        ax.axvline(x(rate), ls=":", color="tab:green", label="next to try" if i == 0 else None)
        ax.text(x(rate), 0.02, f"{rate:g}", transform=ax.get_xaxis_transform(), rotation=90,
                fontsize=7, color="tab:green")  # fmt: skip
    if baseline is not None:
        reference_line(ax, baseline, task.trivial)
    ticks = sorted({x(r) for r in rates})
    ax.set_xticks(ticks, ["0" if t == zero else f"{10**t:g}" for t in ticks])
    rate = "L2-SP rate, toward the start" if bracket.axis == L2_SP else "Keras L2 rate"
    ax.set_xlabel(f"{rate} (log scale; 0 = no penalty)")
    ax.set_ylabel(f"validation {word}")
    ax.set_title("The best rate on validation and the rates to try next")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig

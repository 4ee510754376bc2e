"""Choosing L2 from a sweep: which layer needs it, whether more data would do, what to try next.

Works on the report's sweep table (one row per entry, ranked on validation) and the entries'
specs; imports no TensorFlow. Every choice here (the best rate, the best layer, the best rate
at a training-set size) is made on validation error, its mean over seeds when there are
several; test error is only reported (the data-size curves plot it, as the issue asks).

"Cannot be told apart" follows table.tied_with_best: within one validation sample, or with
repeats within the larger of the two seed spreads (sample standard deviations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.entries import EntrySpec
from pipeline.grid import number_token

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
        test, test_std = _figure(row, "test_error")
        points.append(Point(entry.name, rate, layer, rows, noise, val, val_std, test, test_std))
    return points


def indistinguishable(a: Point, b: Point, val_rows: int) -> bool:
    """Whether two points' validation errors cannot be told apart (see module docstring)."""
    if a.val_std or b.val_std:
        return abs(a.val - b.val) <= max(a.val_std, b.val_std) + ROUNDING
    return round(abs(a.val - b.val) * val_rows) <= 1


def _margin_words(a: Point, b: Point, val_rows: int) -> str:
    if a.val_std or b.val_std:
        return f"the seed spread ({max(a.val_std, b.val_std):.3f})"
    return f"one validation sample (1/{val_rows} = {1 / val_rows:.3f})"


def _unique_rates(points: Sequence[Point]) -> dict[float, Point]:
    """rate -> its first point (the table is ranked, so the better of duplicates)."""
    found: dict[float, Point] = {}
    for point in points:
        found.setdefault(point.rate, point)
    return found


# --- 2. which layer needs it --------------------------------------------------------------


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
    return pd.DataFrame(rows, columns=["layer", "l2_rate", "log10_rate", "val_error"])


def layer_heatmap_figure(grid: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(1.2 * len(grid.columns) + 2.4, 0.6 * len(grid.index) + 1.6))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [f"{r:g}" for r in grid.columns])
    ax.set_yticks(range(len(grid.index)), [f"{layer} alone" if layer != ALL else "all layers"
                                          for layer in grid.index])  # fmt: skip
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if not math.isnan(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white", fontsize=9)
    ax.set_xlabel("Keras L2 rate (0 = no penalty)")
    ax.set_title("Validation error: which layer's L2 matters")
    fig.colorbar(image, ax=ax, label="validation error")
    return fig


def layer_verdict(points: Sequence[Point], layers: Sequence[str], val_rows: int) -> list[str]:
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
        margin = _margin_words(top, runner, val_rows)
        if indistinguishable(top, runner, val_rows):
            text.append(f"{top.layer} and {runner.layer} cannot be told apart (within {margin}).")
        else:
            text.append(f"It beats the next layer, {runner.layer}, by more than {margin}.")
    largest = max((p.rate for p in default if p.layer == top.layer), default=0.0)
    if top.rate == largest:
        text.append(
            f"{top.rate:g} is the largest rate tried on {top.layer} alone: its best rate may be "
            f"higher (add larger rates to the grid)."
        )
    if zero is not None and indistinguishable(top, zero, val_rows):
        text.append(
            f"No layer's L2 helps by more than {_margin_words(top, zero, val_rows)}: on this "
            f"model and data the layers cannot be ranked."
        )
    everything = best_of.get(ALL)
    if everything is not None:
        margin = _margin_words(top, everything, val_rows)
        if indistinguishable(top, everything, val_rows):
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


# --- 3. would more data do better ---------------------------------------------------------


def size_curves(points: Sequence[Point]) -> pd.DataFrame:
    """Per label-noise share and training-set size: rate 0's errors and those of the rate with
    the lowest validation error at that size. Columns noise, train_size, series, l2_rate,
    entry, val_error, test_error, test_error_std."""
    sized = [p for p in points if p.rows is not None and p.layer == ALL]
    rows = []
    for noise in sorted({p.noise for p in sized}):
        for n in sorted({p.rows for p in sized if p.noise == noise}):
            here = [p for p in sized if p.noise == noise and p.rows == n]
            zero = next((p for p in here if p.rate == 0), None)
            best = min(here, key=lambda p: p.val)  # ranked order breaks ties
            for series, p in (("rate 0", zero), ("best rate", best)):
                if p is not None:
                    rows.append(
                        {
                            "noise": noise,
                            "train_size": n,
                            "series": series,
                            "l2_rate": p.rate,
                            "entry": p.entry,
                            "val_error": p.val,
                            "test_error": p.test,
                            "test_error_std": p.test_std,
                        }
                    )
    columns = ["noise", "train_size", "series", "l2_rate", "entry", "val_error", "test_error"]
    return pd.DataFrame(rows, columns=[*columns, "test_error_std"])


def equivalent_samples(curve: pd.DataFrame, n: int, error: float) -> float | None:
    """The training-set size at which the rate-0 curve reaches `error`, interpolated linearly
    in log(size) between the sizes around the crossing, searching from `n` up; None when it
    does not get there within the curve."""
    sizes = curve["train_size"].to_numpy(dtype=float)
    errors = curve["test_error"].to_numpy(dtype=float)
    for i in range(len(sizes)):
        if sizes[i] < n:
            continue
        if errors[i] <= error:
            if i == 0 or sizes[i - 1] < n or errors[i - 1] <= error:
                return float(sizes[i])
            share = (errors[i - 1] - error) / (errors[i - 1] - errors[i])
            logs = np.log(sizes[i - 1]) + share * (np.log(sizes[i]) - np.log(sizes[i - 1]))
            return float(np.exp(logs))
    return None


def data_equivalents(curves: pd.DataFrame) -> list[tuple[float, int, str]]:
    """(noise, size, sentence) for every size where a non-zero rate is best."""
    found = []
    for noise, group in curves.groupby("noise", sort=True):
        zero = group[group["series"] == "rate 0"].sort_values("train_size")
        best = group[group["series"] == "best rate"].sort_values("train_size")
        for row in best.itertuples():
            if row.l2_rate == 0 or zero.empty:
                continue
            at = zero[zero["train_size"] == row.train_size]
            if not at.empty and row.test_error >= at["test_error"].iloc[0]:
                sentence = (
                    f"at {row.train_size} samples, L2 at rate {row.l2_rate:g} (best on validation)"
                    f" does not reach a lower test error than rate 0 ({row.test_error:.3f})"
                )
            else:
                m = equivalent_samples(zero, row.train_size, row.test_error)
                if m is None:
                    largest = int(zero["train_size"].max())
                    sentence = (
                        f"at {row.train_size} samples, L2 at rate {row.l2_rate:g} reaches a test "
                        f"error ({row.test_error:.3f}) that rate 0 does not reach even with "
                        f"{largest} samples ({zero['test_error'].iloc[-1]:.3f}): the curves do "
                        f"not cross within the grid"
                    )
                else:
                    sentence = (
                        f"at {row.train_size} samples, L2 at rate {row.l2_rate:g} reaches the "
                        f"error that rate 0 needs about {m:.0f} samples for (test error "
                        f"{row.test_error:.3f}; {m / row.train_size:.1f}x the data)"
                    )
            found.append((float(noise), int(row.train_size), sentence))
    return found


def size_figure(curves: pd.DataFrame) -> Figure:
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
    ax.set_xscale("log")
    sizes = sorted(curves["train_size"].unique())
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training-set size (rows, log scale; nested subsets)")
    ax.set_ylabel("test error")
    ax.set_title("Test error vs training-set size: rate 0 vs the best rate on validation")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


# --- 4. what to try next ------------------------------------------------------------------

POINTS_PER_SIDE = 2


def _two_digits(value: float) -> float:
    return float(f"{value:.2g}")


def next_rates(points: Sequence[Point]) -> tuple[Point, Point | None, Point | None, list[float]]:
    """The best rate on data's training split (all layers), its neighbours among the tried
    rates, and log-spaced rates strictly between them, not yet tried."""
    tried = _unique_rates([p for p in points if p.rows is None and p.layer == ALL])
    best = min(tried.values(), key=lambda p: p.val)  # ranked order breaks ties
    rates = sorted(tried)
    i = rates.index(best.rate)
    lower = tried[rates[i - 1]] if i > 0 else None
    upper = tried[rates[i + 1]] if i + 1 < len(rates) else None
    if best.rate == 0:
        # No log axis below 0: look two decades under the smallest rate tried.
        top = upper.rate if upper else 1e-4
        bounds = [(top / 100, top)]
    else:
        low = lower.rate if lower and lower.rate > 0 else best.rate / 10
        high = upper.rate if upper else best.rate * 10
        bounds = [(low, best.rate), (best.rate, high)]
    proposed = []
    for lo, hi in bounds:
        inner = np.geomspace(lo, hi, POINTS_PER_SIDE + 2)[1:-1]
        proposed += [_two_digits(r) for r in inner]
    proposed = sorted({r for r in proposed if r not in tried and r > 0})
    return best, lower, upper, proposed


def next_rates_figure(points: Sequence[Point]) -> Figure:
    """Mean validation error (± seed spread) vs rate, all layers on data's training split, with
    the best rate circled and the proposed rates as dotted lines (rate 0 a decade below)."""
    tried = _unique_rates([p for p in points if p.rows is None and p.layer == ALL])
    best, _, _, proposed = next_rates(points)
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
        label="validation error (tried)",
    )
    ax.plot([x(best.rate)], [best.val], "o", ms=14, mfc="none", color="tab:red", label="best")
    for i, rate in enumerate(proposed):
        ax.axvline(x(rate), ls=":", color="tab:green", label="next to try" if i == 0 else None)
        ax.text(x(rate), 0.02, f"{rate:g}", transform=ax.get_xaxis_transform(), rotation=90,
                fontsize=7, color="tab:green")  # fmt: skip
    ticks = sorted({x(r) for r in rates})
    ax.set_xticks(ticks, ["0" if t == zero else f"{10**t:g}" for t in ticks])
    ax.set_xlabel("Keras L2 rate (log scale; 0 = no penalty)")
    ax.set_ylabel("validation error")
    ax.set_title("The best rate on validation and the rates to try next")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def next_rates_markdown(points: Sequence[Point], val_rows: int, grid_is_set: bool) -> list[str]:
    default = [p for p in points if p.rows is None and p.layer == ALL]
    if not default:
        return []
    best, lower, upper, proposed = next_rates(points)
    neighbours = [p for p in (lower, upper) if p is not None]
    spread = f" ± {best.val_std:.3f}" if best.val_std else ""
    lines = [
        "## What to try next",
        "",
        f"Best rate on mean validation error (all layers, data's training split): "
        f"**{best.rate:g}** ({best.entry}, {best.val:.3f}{spread}); neighbours tried: "
        + (", ".join(f"{p.rate:g} ({p.val:.3f})" for p in neighbours) or "none")
        + ".",
        "",
    ]
    seeded = any(p.val_std for p in default)
    if seeded:
        beaten = [p for p in neighbours if not indistinguishable(best, p, val_rows)]
        tied = [p for p in neighbours if p not in beaten]
        if tied:
            lines.append(
                f"With the seeds trained, {best.rate:g} is **not distinguishable** from "
                + " and ".join(f"{p.rate:g}" for p in tied)
                + ": the difference is within the seed spread. There is no single winner "
                "here; the bracket below looks between them, and more seeds "
                "(`base.repeat_seeds`) would narrow the spread."
            )
        else:
            lines.append(
                f"{best.rate:g} beats its neighbours by more than the seed spread "
                f"(" + ", ".join(f"{p.rate:g}: {p.val - best.val:+.3f}" for p in neighbours) + ")."
            )
    else:
        lines.append(
            "One seed per entry: set `base.repeat_seeds` (e.g. `[43, 44]`) to learn whether "
            "the best rate beats its neighbours by more than the seed spread."
        )
    if not proposed:
        return [*lines, "", "Every rate of the bracket has been tried."]
    lines += [
        "",
        "Log-spaced rates between the neighbours (`plots/next_rates.png`), one queued "
        "experiment each (every other setting as now; each trains only its own entry):",
        "",
        "```bash",
    ]
    reset = " -S 'grid.rates=[]'" if grid_is_set else ""
    for rate in proposed:
        name = f"l2_{number_token(rate)}"
        lines.append(
            f"dvc exp run --queue -n next_{number_token(rate)} -S '~sweep' "
            f"-S '+sweep={{{name}: {{l2: {rate:g}}}}}'{reset}"
        )
    lines += ["dvc queue start", "dvc exp show --drop '.*' --keep 'Experiment|val_error.*'", "```"]
    return lines


# --- the report's section ------------------------------------------------------------------


def analyse(
    entries: Sequence[EntrySpec],
    table: pd.DataFrame,
    *,
    layers: Sequence[str],
    default_rows: int,
    default_noise: float,
    pool_rows: int,
    val_rows: int,
    grid_is_set: bool,
) -> tuple[dict[str, pd.DataFrame], dict[str, Figure], str]:
    """The plot data files, figures and Markdown (`choosing.md`) of the three questions."""
    points = place(entries, table, default_rows, default_noise, pool_rows)
    data: dict[str, pd.DataFrame] = {}
    figures: dict[str, Figure] = {}
    parts = ["# Choosing L2", ""]
    grid = layer_grid(points, layers)
    if grid is not None:
        data["layer_heatmap"] = layer_heatmap_data(grid)
        figures["layer_heatmap"] = layer_heatmap_figure(grid)
        table_md = ["| | " + " | ".join(f"{r:g}" for r in grid.columns) + " |"]
        table_md.append("|---|" + "---|" * len(grid.columns))
        for layer, row in grid.iterrows():
            cells = ["" if pd.isna(v) else f"{v:.3f}" for v in row]
            label = "all layers" if layer == ALL else f"{layer} alone"
            table_md.append(f"| {label} | " + " | ".join(cells) + " |")
        parts += [
            "## Which layer needs it",
            "",
            "Validation error (mean over seeds when there are several), layers x rates "
            "(`plots/layer_heatmap.png`):",
            "",
            *table_md,
            "",
            *layer_verdict(points, layers, val_rows),
            "",
        ]
    curves = size_curves(points)
    if not curves.empty:
        data["error_vs_train_size"] = curves
        figures["error_vs_train_size"] = size_figure(curves)
        parts += [
            "## Would more data do better?",
            "",
            "Test error vs training-set size (`plots/error_vs_train_size.png`): rate 0 and, at "
            "each size, the rate with the lowest validation error. Subsets are nested.",
            "",
        ]
        sentences = data_equivalents(curves)
        for noise in sorted({s[0] for s in sentences}):
            parts.append(f"With label noise {noise:g}:")
            parts += [f"- {s}." for nz, _, s in sentences if nz == noise]
            parts.append("")
        if not sentences:
            parts += ["Rate 0 is best on validation at every size: L2 has no data-equivalent.", ""]
    if any(p.rows is None and p.layer == ALL for p in points):
        figures["next_rates"] = next_rates_figure(points)
    parts += next_rates_markdown(points, val_rows, grid_is_set)
    return data, figures, "\n".join(parts).rstrip() + "\n"

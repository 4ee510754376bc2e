"""The sweep's plots: tidy tables for `dvc plots show` and the same views as matplotlib figures.

Rates span decades and include 0, which has no logarithm. Every "vs rate" view therefore
uses x = log10(rate) and puts rate 0 one decade below the smallest non-zero rate, labelled
"0" (matplotlib draws a break mark there). Entries with different rates per layer have no
single rate: they appear in the table, the learning curves and the histograms, not on a
rate axis.

Figures are built with `matplotlib.figure.Figure`, never pyplot: no global state and no GUI
backend to choose, so it works the same in a DVC stage, a test or a server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.core.task import CLASSIFICATION_TASK, REGRESSION_TASK, Task
from pipeline.reporting.uncertainty import rmse_and_se
from pipeline.reporting.wording import figure_axis

ERROR_SERIES = {"train_error": "train", "val_error": "val", "test_error": "test"}
CURVE_ERROR_SERIES = {"train_error": "train error", "val_error": "val error"}
CURVE_LOSS_SERIES = {"data_loss": "data loss (train)", "l2_penalty": "L2 penalty"}
ZERO_LABEL = "0"
# The trivial baseline's series (pipeline/datasets/baseline.py): a horizontal reference line.
BASELINE_SERIES = CLASSIFICATION_TASK.trivial
BASELINE_NAMES = (CLASSIFICATION_TASK.trivial, REGRESSION_TASK.trivial)


def error_series(task: Task) -> dict[str, str]:
    """The headline figure's column per split -> its series on the rate plots."""
    return {task.of(split): split for split in ("train", "val", "test")}


def curve_error_series(task: Task) -> dict[str, str]:
    """history.csv's headline columns -> the learning curves' series."""
    if not task.is_regression:
        return CURVE_ERROR_SERIES
    word = task.word
    return {task.train_figure: f"train {word}", task.val_figure: f"val {word}"}


def zero_position(rates: Sequence[float]) -> float:
    """Where rate 0 sits on the log10 axis: a decade below the smallest non-zero rate."""
    positive = [r for r in rates if r > 0]
    return math.floor(math.log10(min(positive))) - 1.0 if positive else -1.0


def by_rate(table: pd.DataFrame, rates: Mapping[str, float]) -> pd.DataFrame:
    """The table's rows of single-rate entries, sorted by rate, with `l2_rate` and `log10_rate`."""
    rows = table[table["entry"].isin(list(rates))].copy()
    rows["l2_rate"] = rows["entry"].map(rates).astype(float)
    zero = zero_position(list(rates.values()))
    rows["log10_rate"] = [math.log10(r) if r > 0 else zero for r in rows["l2_rate"]]
    return rows.sort_values(["l2_rate", "entry"]).reset_index(drop=True)


def long_by_rate(rows: pd.DataFrame, series: Mapping[str, str], value: str) -> pd.DataFrame:
    """One row per (entry, series) with columns entry, l2_rate, log10_rate, series, `value`."""
    melted = rows.melt(
        id_vars=["entry", "l2_rate", "log10_rate"],
        value_vars=list(series),
        var_name="series",
        value_name=value,
    )
    melted["series"] = melted["series"].map(series)
    return melted


def error_by_rate(
    rows: pd.DataFrame,
    split_rows: dict[str, int] | None = None,
    baseline: float | None = None,
    *,
    task: Task,
    val_se: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Train/val/test figure per rate (the CSV's `error` column: the error, or RMSE): the mean
    over seeds with its standard deviation as `error_std` when `base.repeat_seeds` is set,
    else the single model's figure with a standard error as `error_se` (classification: the
    binomial one over the split's rows, `split_rows`; regression: `val_se`, entry -> the
    SE of its validation RMSE, where the decision has one); with `choose.folds`, a `cv`
    series: the mean CV figure ± its SE over folds. `baseline` (the trivial baseline's
    validation figure) is the task's baseline series, the same value at every rate."""
    errors = _split_errors(rows, split_rows, task, val_se)
    if baseline is None or rows.empty:
        return errors
    reference = rows[["entry", "l2_rate", "log10_rate"]].assign(
        series=task.trivial, error=baseline
    )
    return pd.concat([errors, reference], ignore_index=True)


def _split_errors(
    rows: pd.DataFrame, split_rows: dict[str, int] | None, task: Task, val_se: dict | None
) -> pd.DataFrame:
    series = error_series(task)
    if f"{task.val_figure}_mean" in rows.columns:
        means = {f"{column}_mean": name for column, name in series.items()}
        stds = {f"{column}_std": name for column, name in series.items()}
        errors = long_by_rate(rows, means, "error")
        # Same rows, same series order: the melted frames line up row for row.
        errors["error_std"] = long_by_rate(rows, stds, "error_std")["error_std"].to_numpy()
        return errors
    errors = long_by_rate(rows, series, "error")
    if task.is_regression:
        if val_se:
            at_val = errors["series"] == "val"
            errors["error_se"] = np.where(at_val, errors["entry"].map(val_se), np.nan)
    elif split_rows:
        n = errors["series"].map(split_rows).to_numpy(dtype=float)
        p = errors["error"].to_numpy(dtype=float)
        errors["error_se"] = np.sqrt(p * (1 - p) / n)
    if task.cv_mean in rows.columns:
        cv = long_by_rate(rows, {task.cv_mean: "cv"}, "error")
        cv["error_se"] = long_by_rate(rows, {task.cv_se: "cv"}, "e")["e"].to_numpy()
        if task.is_regression:  # the root of the mean CV MSE, its SE by the delta method
            cv["error"], cv["error_se"] = rmse_and_se(cv["error"], cv["error_se"])
        errors = pd.concat([errors, cv], ignore_index=True)
    return errors


def layer_series(columns: Sequence[str], prefix: str) -> dict[str, str]:
    """`{prefix}<layer>` columns -> layer name, in table order (hidden_1, ..., output)."""
    return {c: c.removeprefix(prefix) for c in columns if c.startswith(prefix)}


def long_curves(histories: Mapping[str, pd.DataFrame], series: Mapping[str, str]) -> pd.DataFrame:
    """Per-epoch histories of every entry: columns entry, epoch, series, value."""
    frames = []
    for entry, history in histories.items():
        melted = history.melt(
            id_vars=["epoch"], value_vars=list(series), var_name="series", value_name="value"
        )
        melted.insert(0, "entry", entry)
        melted["series"] = melted["series"].map(series)
        frames.append(melted)
    return pd.concat(frames, ignore_index=True)


def _entry_colors(entries: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    n = max(len(entries) - 1, 1)
    return {entry: cmap(0.9 * i / n) for i, entry in enumerate(entries)}


def _rate_axis(ax, rates: Sequence[float]) -> None:
    zero = zero_position(rates)
    positive = [r for r in rates if r > 0]
    decades = (
        range(math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive))) + 1)
        if positive
        else range(0)
    )
    ticks = [zero, *decades] if any(r == 0 for r in rates) else list(decades)
    ax.set_xticks(ticks, [ZERO_LABEL if t == zero else f"1e{t}" for t in ticks])
    if any(r == 0 for r in rates) and positive:
        # A break mark between "0" and the first decade: the axis is not continuous there.
        ax.plot(
            [zero + 0.45, zero + 0.55],
            [0, 0],
            transform=ax.get_xaxis_transform(),
            color="black",
            lw=3,
            solid_capstyle="butt",
            clip_on=False,
        )
        ax.text(zero + 0.5, 0.01, "//", transform=ax.get_xaxis_transform(), ha="center")
    ax.set_xlabel("Keras L2 rate (log scale; 0 = no penalty)")
    ax.grid(alpha=0.3)


def rate_figure(
    long: pd.DataFrame, value: str, *, title: str, ylabel: str, logy: bool = False
) -> Figure:
    """One line per series against the rate axis; ± one standard error as a band where a
    `<value>_se` column gives it."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for name, group in long.groupby("series", sort=False):
        if name in BASELINE_NAMES:
            reference_line(ax, float(group[value].iloc[0]), name)
            continue
        group = group.sort_values("log10_rate")
        # Error bars when the values are means over seeds (a `<value>_std` column).
        spread = group[f"{value}_std"] if f"{value}_std" in group.columns else None
        bars = ax.errorbar(
            group["log10_rate"], group[value], yerr=spread, marker="o", capsize=3, label=name
        )
        if f"{value}_se" in group.columns and group[f"{value}_se"].notna().any():
            # A band of ± one standard error (binomial, or over folds for `cv`).
            se = group[f"{value}_se"].fillna(0)
            ax.fill_between(group["log10_rate"], group[value] - se, group[value] + se,
                            color=bars[0].get_color(), alpha=0.15, lw=0)  # fmt: skip
    _rate_axis(ax, list(long["l2_rate"].unique()))
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if not long.empty:  # a sweep with no entry on the rate axis draws the empty axes only
        ax.legend()
    return fig


def reference_line(ax, error: float, name: str = BASELINE_SERIES) -> None:
    """The trivial baseline across the whole axes, labelled as such."""
    shown = f"{error:.4g}" if name != BASELINE_SERIES else f"{error:.3f}"
    ax.axhline(error, color="dimgray", ls="--", lw=1.2, label=f"{name} ({shown})")


def curves_figure(
    histories: Mapping[str, pd.DataFrame],
    order: Sequence[str],
    task: Task,
    target: str | None = None,
) -> Figure:
    """Left: train (dashed) and val (solid) headline figure per epoch (error, or RMSE in the
    target's units); right: data loss (solid) and L2 penalty (dashed), on the scale training
    minimises (regression: the standardised target). One colour per entry, in `order`
    (weakest rate first)."""
    word = task.word
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    errors, losses = fig.subplots(1, 2)
    colors = _entry_colors(order)
    for entry in order:
        h = histories[entry]
        c = colors[entry]
        errors.plot(h["epoch"], h[task.val_figure], color=c, label=entry)
        errors.plot(h["epoch"], h[task.train_figure], color=c, ls="--", lw=1)
        losses.plot(h["epoch"], h["data_loss"], color=c, label=entry)
        losses.plot(h["epoch"], h["l2_penalty"], color=c, ls="--", lw=1)
    errors.set_title(f"{word} per epoch: val (solid) vs train (dashed)")
    errors.set_ylabel(figure_axis(task, target) if task.is_regression else word)
    losses.set_title("train data loss (solid) vs L2 penalty (dashed)")
    losses.set_ylabel(loss_axis(task))
    losses.set_yscale("symlog", linthresh=1e-3)
    for ax in (errors, losses):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    errors.legend(fontsize="small", ncols=2)
    return fig


def loss_axis(task: Task) -> str:
    """The loss curves' y axis: what training minimises besides the penalty, and the penalty."""
    if task.is_regression:
        return "MSE (standardised target) / penalty"
    return "cross-entropy / penalty"


# Entries whose names fit in a legend inside a panel; more go beside the panels.
LEGEND_INSIDE_MAX = 16


def histograms_figure(
    kernels: Mapping[str, Mapping[str, np.ndarray]], order: Sequence[str], bins: int = 60
) -> Figure:
    """Per layer, the distribution of kernel weights of every entry on shared bins (log counts)."""
    layers = list(next(iter(kernels.values())))
    fig = Figure(figsize=(4.2 * len(layers), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(layers)))
    colors = _entry_colors(order)
    for ax, layer in zip(axes, layers, strict=True):
        limit = max(float(np.max(np.abs(kernels[e][layer]))) for e in order) or 1.0
        edges = np.linspace(-limit, limit, bins + 1)
        for entry in order:
            counts, _ = np.histogram(kernels[entry][layer], bins=edges)
            ax.stairs(counts, edges, color=colors[entry], label=entry)
        ax.set_yscale("log")
        ax.set_title(f"{layer} kernel weights")
        ax.set_xlabel("weight")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("count (log)")
    if len(order) <= LEGEND_INSIDE_MAX:
        axes[-1].legend(fontsize="small")
    else:  # inside the panel, a grid's 30 names leave the axes no height at all
        fig.legend(
            *axes[-1].get_legend_handles_labels(),
            loc="outside right upper",
            fontsize="small",
            ncols=math.ceil(len(order) / LEGEND_INSIDE_MAX),
        )
    return fig

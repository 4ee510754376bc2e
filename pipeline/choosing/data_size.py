"""Would more data do better: test error vs training-set size, rate 0 against the best rate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.choosing.points import (
    ALL,
    Point,
)


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

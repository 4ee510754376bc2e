"""The demonstration's one figure: each approach's test error against its rate, with the 95%
interval, one panel per target. Built with `matplotlib.figure.Figure` (no pyplot state), as
the report's plots are."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from pipeline.demos.results import EntryResult
from pipeline.demos.tables import TITLES

ZERO_AT = 1e-5  # where rate 0 is drawn on the log axis, a decade below the smallest rate


def _x(result: EntryResult) -> float:
    return ZERO_AT if not result.rate else result.rate


def test_error_by_rate(by_target: dict[str, list[EntryResult]], path: Path) -> None:
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    axes = figure.subplots(1, len(by_target), sharey=True)
    for ax, (target, results) in zip(axes, by_target.items(), strict=True):
        approaches = dict.fromkeys(r.approach for r in results)
        for approach in approaches:
            points = [r for r in results if r.approach == approach]
            xs = [_x(r) for r in points]
            ys = [r.test_error for r in points]
            spread = [
                [r.test_error - r.test_ci_low for r in points],
                [r.test_ci_high - r.test_error for r in points],
            ]
            ax.errorbar(xs, ys, yerr=spread, marker="o", capsize=3, label=approach)
        ax.set_xscale("log")
        ticks = sorted({_x(r) for r in results})
        ax.set_xticks(ticks, ["0" if t == ZERO_AT else f"{t:g}" for t in ticks])
        ax.set_title(TITLES.get(target, target), fontsize=10)
        ax.set_xlabel("the approach's rate (l2, or l2_sp for L2-SP)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test error, 95% interval")
    axes[-1].legend(fontsize=8)
    figure.savefig(path, dpi=100, metadata={"Software": None})

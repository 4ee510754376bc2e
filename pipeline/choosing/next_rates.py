"""What to try next: a log-spaced bracket around the best rate, as ready-to-paste commands."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from pipeline.choosing.points import (
    ALL,
    HeldOut,
    Point,
    indistinguishable,
    margin_words,
    unique_rates,
)
from pipeline.config.grid import number_token

POINTS_PER_SIDE = 2


# Each experiment's best entry and its errors, best on validation first: fits an 80-column
# terminal (DVC pages and cuts a wider table; `--keep` matches a column's full name, so
# `val_error` alone matches nothing: a metric's column is `metrics/<entry>.json:val_error`).
EXP_SHOW_BEST = (
    "dvc exp show --drop '.*' --keep 'Experiment|best_entry|best_val_error|best_test_error' "
    "--sort-by best_val_error --sort-order asc"
)


def _two_digits(value: float) -> float:
    return float(f"{value:.2g}")


def next_rates(
    points: Sequence[Point], distinct: Callable[[Point, Point], bool] | None = None
) -> tuple[Point, Point | None, Point | None, list[float]]:
    """The best rate on data's training split (all layers), its neighbours among the tried
    rates, and log-spaced rates, not yet tried, where a bracket could change the decision.

    A side is bracketed when its neighbour can be told apart from the best (`distinct`; None:
    every neighbour can): between two rates that cannot, a new rate sits on the same plateau.
    Beyond the grid's edge, a bracket is proposed when the neighbour on the other side can be
    told apart (the curve still falls toward the edge). One rate alone, without neighbours,
    says nothing about where to look: no bracket."""
    tried = unique_rates([p for p in points if p.rows is None and p.layer == ALL])
    best = min(tried.values(), key=lambda p: p.val)  # ranked order breaks ties
    rates = sorted(tried)
    i = rates.index(best.rate)
    lower = tried[rates[i - 1]] if i > 0 else None
    upper = tried[rates[i + 1]] if i + 1 < len(rates) else None

    def apart(neighbour: Point | None) -> bool:
        return neighbour is not None and (distinct is None or distinct(best, neighbour))

    bounds = []
    if best.rate == 0:
        # No log axis below 0: look two decades under the next rate tried.
        if apart(upper):
            bounds.append((upper.rate / 100, upper.rate))
    else:
        if apart(lower) or (lower is None and apart(upper)):
            low = lower.rate if lower and lower.rate > 0 else best.rate / 10
            bounds.append((low, best.rate))
        if apart(upper) or (upper is None and apart(lower)):
            bounds.append((best.rate, upper.rate if upper else best.rate * 10))
    proposed = []
    for lo, hi in bounds:
        inner = np.geomspace(lo, hi, POINTS_PER_SIDE + 2)[1:-1]
        proposed += [_two_digits(r) for r in inner]
    proposed = sorted({r for r in proposed if r not in tried and r > 0})
    return best, lower, upper, proposed


def next_rates_figure(
    points: Sequence[Point], distinct: Callable[[Point, Point], bool] | None = None
) -> Figure:
    """Mean validation error (± seed spread) vs rate, all layers on data's training split, with
    the best rate circled and the proposed rates as dotted lines (rate 0 a decade below)."""
    tried = unique_rates([p for p in points if p.rows is None and p.layer == ALL])
    best, _, _, proposed = next_rates(points, distinct)
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


def distinct_from(val_rows: int, held_out: HeldOut | None) -> Callable[[Point, Point], bool]:
    """Whether two points can be told apart: the paired test with predictions, else
    points.indistinguishable's fallback rule."""
    return lambda a, b: not indistinguishable(a, b, val_rows, held_out)


def next_rates_markdown(
    points: Sequence[Point],
    val_rows: int,
    grid_is_set: bool,
    held_out: HeldOut | None = None,
    cross_validated: bool = False,
) -> list[str]:
    default = [p for p in points if p.rows is None and p.layer == ALL]
    if not default:
        return []
    distinct = distinct_from(val_rows, held_out)
    best, lower, upper, proposed = next_rates(points, distinct)
    figure = "mean CV error" if cross_validated else "mean validation error"
    where = "folds of the pooled rows" if cross_validated else "data's training split"
    neighbours = [p for p in (lower, upper) if p is not None]
    spread = f" ± {best.val_std:.3f}" if best.val_std else ""
    lines = [
        "## What to try next",
        "",
        f"Best rate on {figure} (all layers, {where}): "
        f"**{best.rate:g}** ({best.entry}, {best.val:.3f}{spread}); neighbours tried: "
        + (", ".join(f"{p.rate:g} ({p.val:.3f})" for p in neighbours) or "none")
        + ".",
        "",
    ]
    tied = [p for p in neighbours if not distinct(best, p)]
    beaten = [p for p in neighbours if p not in tied]
    if not neighbours:
        lines.append(
            "One rate alone says nothing about where a better one lies: train a grid around it "
            "(`grid.rates`, docs/choosing-l2.md) before bracketing."
        )
    elif tied:
        lines.append(
            f"{best.rate:g} **cannot be told apart** from "
            + " and ".join(
                f"{p.rate:g} (within {margin_words(best, p, val_rows, held_out)})" for p in tied
            )
            + ": a rate between them would sit on the same plateau and could not change the "
            "decision, so no bracket is proposed on that side. More validation rows (more "
            "data) or more seeds (`base.repeat_seeds`) would narrow it."
        )
    if beaten:
        lines.append(
            f"{best.rate:g} beats "
            + " and ".join(
                f"{p.rate:g} (by more than {margin_words(best, p, val_rows, held_out)})"
                for p in beaten
            )
            + "."
        )
    seeded = any(p.val_std for p in default)
    if not seeded and held_out is None:
        lines.append(
            "One seed per entry: set `base.repeat_seeds` (e.g. `[43, 44]`) to learn whether "
            "the best rate beats its neighbours by more than the seed spread."
        )
    if not proposed:
        if beaten and not tied:
            return [*lines, "", "Every rate of the bracket has been tried."]
        return [*lines, "", "No new rates to propose: none could change the decision."]
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
    lines += ["dvc queue start", EXP_SHOW_BEST, "```"]
    return lines

"""What to try next: a log-spaced bracket around the best rate, and the commands that train it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.choosing.judge import Judge
from pipeline.choosing.points import ALL, Point, Versus, unique_rates, versus
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


@dataclass(frozen=True)
class Bracket:
    """What to try next: the best rate on all layers, its neighbours judged, the rates to
    propose and the commands that train them (one queued DVC experiment each)."""

    tried: tuple[Point, ...]  # one point per rate tried on all layers, by rate
    best: Point
    lower: Point | None
    upper: Point | None
    tied: tuple[Versus, ...]  # neighbours the judge cannot tell from the best
    beaten: tuple[Versus, ...]
    proposed: tuple[float, ...]
    commands: tuple[str, ...]  # empty when nothing is proposed


def bracket(points: Sequence[Point], judge: Judge, grid_is_set: bool) -> Bracket | None:
    """None without an all-layers entry on data's training split."""
    default = [p for p in points if p.rows is None and p.layer == ALL]
    if not default:
        return None
    best, lower, upper, proposed = next_rates(points, lambda a, b: judge.apart(a.entry, b.entry))
    judged = [versus(judge, best, p) for p in (lower, upper) if p is not None]
    tried = unique_rates(default)
    return Bracket(
        tried=tuple(tried[rate] for rate in sorted(tried)),
        best=best,
        lower=lower,
        upper=upper,
        tied=tuple(v for v in judged if not v.apart),
        beaten=tuple(v for v in judged if v.apart),
        proposed=tuple(proposed),
        commands=next_commands(proposed, grid_is_set),
    )


def next_commands(proposed: Sequence[float], grid_is_set: bool) -> tuple[str, ...]:
    """One queued experiment per proposed rate (every other setting as now; each trains only
    its own entry), then start the queue and compare the experiments."""
    if not proposed:
        return ()
    reset = " -S 'grid.rates=[]'" if grid_is_set else ""
    commands = [
        f"dvc exp run --queue -n next_{number_token(rate)} -S '~sweep' "
        f"-S '+sweep={{l2_{number_token(rate)}: {{l2: {rate:g}}}}}'{reset}"
        for rate in proposed
    ]
    return (*commands, "dvc queue start", EXP_SHOW_BEST)

"""What to try next: a log-spaced bracket around the chosen rate, and the commands that train it.

A neighbour counts as told apart from the chosen rate only where the decision's table says so
(decision.Comparison: the judge's test, adjusted over the decision's whole family), so the
table, this bracket and refine cannot disagree about a pair.

The bracket's rates are added to the sweep as it is, every entry already tried kept, so the
next decision compares the new rates with the old ones on the same rows (paired tests).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, count

import numpy as np

from pipeline.choosing.decision import Comparison, Decision
from pipeline.choosing.points import ALL, L2, L2_SP, Point, unique_rates
from pipeline.config.grid import number_token
from pipeline.core.task import CLASSIFICATION_TASK, Task, task_named

POINTS_PER_SIDE = 2


# Each experiment's best entry and its errors, best on validation first: fits an 80-column
# terminal (DVC pages and cuts a wider table; `--keep` matches a column's full name, so
# `val_error` alone matches nothing: a metric's column is `metrics/<entry>.json:val_error`).
def exp_show_best(task: Task) -> str:
    val, test = f"best_{task.val_figure}", f"best_{task.test_figure}"
    return (
        f"dvc exp show --drop '.*' --keep 'Experiment|best_entry|{val}|{test}' "
        f"--sort-by {val} --sort-order asc"
    )


EXP_SHOW_BEST = exp_show_best(CLASSIFICATION_TASK)


def _two_digits(value: float) -> float:
    return float(f"{value:.2g}")


def next_rates(
    points: Sequence[Point],
    distinct: Callable[[Point, Point], bool] | None = None,
    center: Point | None = None,
) -> tuple[Point, Point | None, Point | None, list[float]]:
    """The rate to bracket on data's training split (all layers; `center`, else the lowest),
    its neighbours among the tried rates, and log-spaced rates, not yet tried, where a
    bracket could change the decision.

    A side is bracketed when its neighbour can be told apart from the center (`distinct`;
    None: every neighbour can): between two rates that cannot, a new rate sits on the same
    plateau. Beyond the grid's edge, a bracket is proposed when the neighbour on the other
    side can be told apart (the curve still falls toward the edge). One rate alone, without
    neighbours, says nothing about where to look: no bracket."""
    tried = unique_rates([p for p in points if p.rows is None and p.layer == ALL])
    best = center or min(tried.values(), key=lambda p: p.val)  # ranked order breaks ties
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
class Neighbour:
    """A rate tried next to the chosen one, and the decision table's row for that pair."""

    point: Point
    comparison: Comparison

    @property
    def apart(self) -> bool:
        return self.comparison.apart

    @property
    def chosen_is_better(self) -> bool:
        """The paired rows' direction: fewer rows only the chosen entry gets wrong."""
        return self.comparison.test.only_a_worse < self.comparison.test.only_b_worse


# Why a bracket proposes nothing whatever its neighbours say (Bracket.held).
NO_DIFFERENCE = "no_difference"  # rate 0 cannot be told apart from the chosen entry
OFF_AXIS = "off_axis"  # the chosen entry is not one rate on all layers of data's split


@dataclass(frozen=True)
class Bracket:
    """What to try next: the chosen rate on all layers, its neighbours as the decision's table
    judges them, the rates to propose, the sweep entries they become and the commands that add
    them to the sweep (one queued DVC experiment)."""

    tried: tuple[Point, ...]  # one point per rate tried on all layers, by rate
    best: Point  # the chosen entry's point; OFF_AXIS: the lowest on the axis
    lower: Point | None
    upper: Point | None
    tied: tuple[Neighbour, ...]  # neighbours the decision cannot tell from the chosen entry
    apart: tuple[Neighbour, ...]
    proposed: tuple[float, ...]
    added: tuple[tuple[str, float], ...]  # (entry name, rate) per proposed rate, by rate
    commands: tuple[str, ...]  # empty when nothing is proposed
    held: str = ""  # NO_DIFFERENCE or OFF_AXIS: nothing is proposed, and why
    axis: str = L2  # the rate bracketed: `l2`, or fine-tuning's `l2_sp`

    @property
    def additions(self) -> list[str]:
        """The `-S` values that add the proposed entries to the sweep."""
        return sweep_additions(dict(self.added), self.axis)


def on_axis(points: Sequence[Point], decision: Decision) -> tuple[str, list[Point]]:
    """The chosen entry's rate axis (`l2` unless it is an `l2_sp` entry) and its points on
    data's training split, all layers, with the chosen entry's start; the unregularized
    model is rate 0 of both axes."""
    chosen = decision.chosen
    axis = next((p.axis for p in points if p.entry == chosen.name), L2)
    found = [
        p for p in points
        if p.rows is None and p.layer == ALL and p.start == chosen.start
        and (p.axis == axis or (p.axis == L2 and p.rate == 0))
    ]  # fmt: skip
    return axis, found


def bracket(
    points: Sequence[Point], decision: Decision | None, names: Collection[str]
) -> Bracket | None:
    """None without a decision or without an all-layers candidate on data's training split.
    `names`: every entry of the sweep (the grid's included), which the new entries' names
    must not take."""
    if decision is None:
        return None
    chosen = decision.chosen.name
    axis, found = on_axis(points, decision)
    default = [
        p for p in found if p.entry == chosen or decision.comparison_with(p.entry) is not None
    ]
    if not default:
        return None
    center = next((p for p in default if p.entry == chosen), None)
    # "No measurable difference" is the answer whichever entry is chosen: it is said first.
    held = NO_DIFFERENCE if decision.l2_unmeasurable else OFF_AXIS if center is None else ""

    def told_apart(_: Point, neighbour: Point) -> bool:
        # Off the axis no pair of rates is in the table: none counts as told apart.
        return center is not None and decision.comparison_with(neighbour.entry).apart

    best, lower, upper, proposed = next_rates(default, told_apart, center)
    judged = [] if center is None else [
        Neighbour(p, decision.comparison_with(p.entry)) for p in (lower, upper) if p is not None
    ]  # fmt: skip
    proposed = [] if held else proposed
    added = new_entries(proposed, names, axis)
    tried = unique_rates(default)
    return Bracket(
        tried=tuple(tried[rate] for rate in sorted(tried)),
        best=best,
        lower=lower,
        upper=upper,
        tied=tuple(n for n in judged if not n.apart),
        apart=tuple(n for n in judged if n.apart),
        proposed=tuple(proposed),
        added=tuple(added.items()),
        commands=next_commands(added, best.rate, task_named(decision.task), axis),
        held=held,
        axis=axis,
    )


def new_entries(
    rates: Sequence[float], names: Collection[str], axis: str = L2
) -> dict[str, float]:
    """Each rate as a new all-layers entry `l2_<rate>` (`l2_sp_<rate>` on the `l2_sp` axis),
    or `l2_<rate>_v2`, `_v3`, ... where an entry of other settings has that name (compared
    without case, as the files it names), so adding it never replaces an entry: DVC 3.67's
    `-S '+sweep.<name>=...'` overwrites one."""
    taken = {name.lower() for name in names}
    added: dict[str, float] = {}
    for rate in rates:
        base = f"{axis}_{number_token(rate)}"
        candidates = chain([base], (f"{base}_v{i}" for i in count(2)))
        name = next(n for n in candidates if n.lower() not in taken)
        taken.add(name.lower())
        added[name] = rate
    return added


def sweep_additions(added: Mapping[str, float], axis: str = L2) -> list[str]:
    """The `-S` values that add `added` to the sweep as it stands: every entry already there,
    hand-written or the grid's, and every other setting stay as they are. `axis`: the key
    each rate goes to (`l2`, or `l2_sp`)."""
    return [f"+sweep.{name}={{{axis}: {rate:g}}}" for name, rate in added.items()]


def next_commands(
    added: Mapping[str, float], center: float, task: Task, axis: str = L2
) -> tuple[str, ...]:
    """One queued experiment, `next_<center>` (`next_sp_<center>` for `l2_sp`), that adds
    every proposed entry to the sweep (the bracket around the rate `center`), then start the
    queue and compare the experiments."""
    if not added:
        return ()
    settings = " ".join(f"-S '{value}'" for value in sweep_additions(added, axis))
    # A short name: EXP_SHOW_BEST's table fits 80 columns with `[next_4p5e_3]`, not with
    # `[next_around_4p5e_3]` (DVC 3.67 cuts the last column).
    tag = "sp_" if axis == L2_SP else ""
    run = f"dvc exp run --queue -n next_{tag}{number_token(center)} {settings}"
    return (run, "dvc queue start", exp_show_best(task))

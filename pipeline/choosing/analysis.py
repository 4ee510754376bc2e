"""The answers `choosing.md` renders: the decision, then which layer needs L2, whether more
data would do, and which rates to try next, all as data (pipeline/reporting/ draws them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.choosing.data_size import DataEquivalent, data_equivalents, size_curves
from pipeline.choosing.decision import Decision
from pipeline.choosing.judge import Judge
from pipeline.choosing.layers import LayerVerdict, layer_grid, layer_verdict, tied_cells
from pipeline.choosing.next_rates import Bracket, bracket
from pipeline.choosing.points import L2, place
from pipeline.config.entries import EntrySpec
from pipeline.core.task import Task


@dataclass(frozen=True)
class Analysis:
    decision: Decision | None  # None: no candidate (every entry diverged)
    test: str  # the judge's paired test, for "within chance (<test> p = ...)"
    grid: pd.DataFrame | None  # validation figure, layers x rates; None: no single-layer entry
    tied_cells: frozenset[tuple[str, float]]  # grid cells the judge cannot tell from the best
    layers: LayerVerdict | None
    curves: pd.DataFrame  # data_size.size_curves; empty without pool entries
    equivalents: tuple[DataEquivalent, ...]
    bracket: Bracket | None  # None without a decision or an all-layers candidate on data's split


def analyse(
    entries: Sequence[EntrySpec],
    table: pd.DataFrame,
    judge: Judge,
    *,
    layers: Sequence[str],
    default_rows: int,
    default_noise: float,
    pool_rows: int,
    decision: Decision | None = None,
    task: Task,
) -> Analysis:
    """Every answer over the sweep's ranked `table` (figure names from `task`); comparisons
    are the judge's."""
    points = place(entries, table, default_rows, default_noise, pool_rows, task)
    # On data's training split every entry has held-out predictions except one that diverged
    # on some fold (with choose.folds): it has no place on the axes the judge compares.
    points = [p for p in points if p.rows is not None or judge.has(p.entry)]
    # The layer grid and the data-size curves are questions of `l2` among the entries that
    # start as the chosen one does (fine-tuning: a scratch entry at a rate is another model);
    # the bracket follows the chosen entry's axis (`l2_sp` too).
    start = decision.chosen.start if decision is not None else ""
    on_l2 = [p for p in points if p.axis == L2 and p.start == start]
    grid = layer_grid(on_l2, layers)
    curves = size_curves(on_l2)
    return Analysis(
        decision=decision,
        test=judge.test,
        grid=grid,
        tied_cells=tied_cells(on_l2, grid, judge) if grid is not None else frozenset(),
        layers=layer_verdict(on_l2, layers, judge) if grid is not None else None,
        curves=curves,
        equivalents=tuple(data_equivalents(curves)) if not curves.empty else (),
        bracket=bracket(points, decision, [e.name for e in entries]),
    )

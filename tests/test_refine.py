"""The refinement loop: brackets the best rate each round and stops when the paired test
cannot tell the best rate from its neighbours (fake experiments with a known error curve)."""

from __future__ import annotations

import math

import numpy as np

from pipeline import choosing, refine

# Validation rows of the fake lab: enough that a difference of 0.004 is 8 rows, which the
# exact McNemar test tells apart (p = 0.008) when every discordant row goes one way.
ROWS = 2000


def _curve(rate: float) -> float:
    """Validation error with its minimum at rate 0.008 (log scale), 0.30 at rate 0."""
    if rate == 0:
        return 0.30
    return 0.12 + 0.05 * (math.log10(rate) - math.log10(0.008)) ** 2


class FakeLab:
    def __init__(self, rates):
        self.rates = list(rates)
        self.rounds: list[list[float]] = []

    def read(self):
        points = [
            choosing.Point(f"r{r:g}", r, choosing.ALL, None, None, _curve(r), 0.0, 0, 0)
            for r in self.rates
        ]
        # Each entry gets the first val * ROWS rows wrong: two entries disagree on the rows
        # between their counts, all one way.
        losses = {}
        for p in points:
            losses[p.entry] = np.zeros(ROWS)
            losses[p.entry][: round(p.val * ROWS)] = 1.0
        return sorted(points, key=lambda p: p.val), choosing.Judge(losses)

    def run(self, k, rates):
        self.rounds.append(list(rates))
        self.rates = list(rates)


def test_each_round_brackets_the_best_and_the_loop_stops_when_the_test_cannot_tell():
    lab = FakeLab([0.0, 0.001, 0.003, 0.01, 0.03, 0.1])
    best = refine.refine(5, lab.read, lab.run)
    assert lab.rounds[0] == [0.0, 0.001, 0.003, 0.0045, 0.0067, 0.01, 0.014, 0.021, 0.03, 0.1]
    # Later rounds only add rates, and it stops before the fifth: the paired test can no
    # longer tell the neighbours from the best.
    assert all(set(a) < set(b) for a, b in zip(lab.rounds, lab.rounds[1:], strict=False))
    assert 1 <= len(lab.rounds) < 5
    assert 0.0045 <= best[0] <= 0.014


def test_a_settled_sweep_runs_nothing():
    lab = FakeLab([0.0, 0.0067, 0.008, 0.0095])
    refine.refine(3, lab.read, lab.run)
    assert lab.rounds == []

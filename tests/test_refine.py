"""The refinement loop: brackets the best rate each round and stops when the bracket's
validation errors are within the seed spread (fake experiments with a known error curve)."""

from __future__ import annotations

import math

from pipeline import choosing, refine


def _curve(rate: float) -> float:
    """Validation error with its minimum at rate 0.008 (log scale), 0.30 at rate 0."""
    if rate == 0:
        return 0.30
    return 0.12 + 0.05 * (math.log10(rate) - math.log10(0.008)) ** 2


class FakeLab:
    def __init__(self, rates, std):
        self.rates = list(rates)
        self.std = std
        self.rounds: list[list[float]] = []

    def read(self):
        points = [
            choosing.Point(f"r{r:g}", r, choosing.ALL, None, None, _curve(r), self.std, 0, 0)
            for r in self.rates
        ]
        return sorted(points, key=lambda p: p.val), 270, None  # no held-out predictions

    def run(self, k, rates):
        self.rounds.append(list(rates))
        self.rates = list(rates)


def test_each_round_brackets_the_best_and_the_loop_stops_within_the_spread():
    lab = FakeLab([0.0, 0.001, 0.003, 0.01, 0.03, 0.1], std=0.004)
    best = refine.refine(5, lab.read, lab.run)
    assert lab.rounds[0] == [0.0, 0.001, 0.003, 0.0045, 0.0067, 0.01, 0.014, 0.021, 0.03, 0.1]
    # Later rounds only add rates, and it stops before the fifth: the neighbours got as good
    # as the best within the seed spread.
    assert all(set(a) < set(b) for a, b in zip(lab.rounds, lab.rounds[1:], strict=False))
    assert 1 <= len(lab.rounds) < 5
    assert 0.0045 <= best[0] <= 0.014


def test_a_settled_sweep_runs_nothing():
    lab = FakeLab([0.0, 0.0067, 0.008, 0.0095], std=0.01)
    refine.refine(3, lab.read, lab.run)
    assert lab.rounds == []

"""The refinement loop: brackets the chosen rate each round, adds the bracket to the sweep,
and stops when the decision's table (exact McNemar, Holm over the whole family) cannot tell
it from its neighbours, or says L2 makes no measurable difference (fake experiments with
known errors, the real decision). A real round: tests/test_refine_round.py."""

from __future__ import annotations

import functools
import logging
import math

import numpy as np
import pandas as pd

from pipeline import choosing, refine
from pipeline.config.entries import EntrySpec, dense_layer_names
from pipeline.core.task import CLASSIFICATION_TASK

# Validation rows of the fake lab: enough that a difference of 0.004 is 8 rows, which the
# exact McNemar test tells apart (p = 0.008) when every discordant row goes one way.
ROWS = 2000
LAYERS = dense_layer_names(2)


def _curve(rate: float) -> int:
    """Wrong validation rows, with the minimum at rate 0.008 (log scale), 0.30 at rate 0."""
    if rate == 0:
        return round(0.30 * ROWS)
    return round((0.12 + 0.05 * (math.log10(rate) - math.log10(0.008)) ** 2) * ROWS)


class FakeLab:
    """A sweep of all-layers entries (name -> rate) that each round grows by the entries it
    adds, as `dvc exp run -S '+sweep.<name>=...'` does; entry k gets the first wrong(k) rows
    wrong, so two entries disagree on the rows between their counts, all one way."""

    def __init__(self, rates, wrong=_curve, rows=ROWS):
        self.sweep = {f"r{r:g}": r for r in rates}
        self.wrong, self.rows = wrong, rows
        self.rounds: list[dict[str, float]] = []
        self.read = functools.cache(self._read)  # refine reads the last round twice

    def _read(self):
        entries = [
            EntrySpec(name, tuple((layer, r) for layer in LAYERS), 0.0)
            for name, r in self.sweep.items()
        ]
        counts = {name: self.wrong(rate) for name, rate in self.sweep.items()}
        table = pd.DataFrame(
            {"entry": list(counts), "val_error": [k / self.rows for k in counts.values()]}
        ).assign(test_error=lambda t: t["val_error"], val_xent=0.0)
        table = table.sort_values("val_error", kind="stable").reset_index(drop=True)
        labels = np.zeros(self.rows, dtype=np.int16)
        predicted = {name: np.where(np.arange(self.rows) < k, 1, 0) for name, k in counts.items()}
        judge = choosing.Judge.of_classes(labels, predicted)
        decision = choosing.decide(
            entries, table, judge, rule="min", seed=42, test_rows=100, task=CLASSIFICATION_TASK
        )
        return (
            choosing.place(entries, table, 300, 0.2, 1000, task=CLASSIFICATION_TASK),
            decision,
            list(self.sweep),
        )

    def run(self, k, added, axis):
        assert axis == "l2"
        assert not set(added) & set(self.sweep), added  # DVC would overwrite such an entry
        self.rounds.append(dict(added))
        self.sweep |= added
        self.read.cache_clear()


def test_each_round_grows_the_sweep_by_the_bracket_and_stops_when_the_test_cannot_tell():
    lab = FakeLab([0.0, 0.001, 0.003, 0.01, 0.03, 0.1])
    first = dict(lab.sweep)
    best = refine.refine(5, lab.read, lab.run)
    assert lab.rounds[0] == {
        "l2_4p5e_3": 0.0045, "l2_6p7e_3": 0.0067, "l2_1p4e_2": 0.014, "l2_2p1e_2": 0.021
    }
    # Every round only adds new rates; the sweep keeps every entry it had, so each round's
    # decision compares all the rates tried. It stops before the fifth: the paired test can
    # no longer tell the neighbours from the best.
    added = [rate for round_ in lab.rounds for rate in round_.values()]
    assert len(added) == len(set(added)) and not set(added) & set(first.values())
    assert lab.sweep == first | {name: r for round_ in lab.rounds for name, r in round_.items()}
    assert 1 <= len(lab.rounds) < 5
    assert 0.0045 <= best[0] <= 0.014


def test_a_round_names_its_entries_apart_from_every_entry_of_the_sweep(caplog):
    # The user's `l2_4p5e_3` is another setting (here another rate under that name): the
    # round's 0.0045 gets `l2_4p5e_3_v2`, and the user's entry stays as it was.
    lab = FakeLab([0.0, 0.001, 0.003, 0.01, 0.03, 0.1])
    lab.sweep["l2_4p5e_3"] = 0.5
    with caplog.at_level(logging.INFO, logger="pipeline.refine"):
        refine.refine(1, lab.read, lab.run)
    assert lab.rounds[0]["l2_4p5e_3_v2"] == 0.0045 and lab.sweep["l2_4p5e_3"] == 0.5
    said = (
        "round 1: chosen 0.01; adding l2_4p5e_3_v2 (0.0045), l2_6p7e_3 (0.0067), l2_1p4e_2"
        " (0.014), l2_2p1e_2 (0.021) to the sweep's 7 entries"
    )
    assert said in caplog.text


def test_a_settled_sweep_runs_nothing():
    lab = FakeLab([0.0, 0.0067, 0.008, 0.0095])
    refine.refine(3, lab.read, lab.run)
    assert lab.rounds == []


def test_neighbours_apart_before_holm_but_not_after_get_no_round(caplog):
    # 0.003 and 0.03 each differ from 0.01 on 6 rows, all one way: p = 2 / 2**6 = 0.031 alone,
    # but Holm over the 5 comparisons makes it 3 * 0.031 = 0.094 (rate 0 and 0.1 differ on
    # 400 rows, 0.001 on 5).
    extra = {0.0: 400, 0.001: 5, 0.003: 6, 0.01: 0, 0.03: 6, 0.1: 400}
    lab = FakeLab(list(extra), wrong=lambda rate: 100 + extra[rate], rows=600)
    _, decision, _ = lab.read()
    assert decision.chosen.name == "r0.01"
    below = decision.comparison_with("r0.003")
    assert below.test.p_value < 0.05 <= below.p_adjusted == 3 * below.test.p_value
    assert decision.l2_measurable  # rate 0 is told apart: the plateau is what stops it
    with caplog.at_level(logging.INFO, logger="pipeline.refine"):
        refine.refine(3, lab.read, lab.run)
    assert lab.rounds == []
    said = "cannot be told apart from its neighbours (Holm-adjusted p 0.0938, 0.0938)"
    assert said in caplog.text


def test_rate_0_tied_with_the_chosen_rate_gets_no_round(caplog):
    # 0.001 is 30 rows worse than 0.01 (told apart: a bracket below 0.01 would be proposed),
    # but rate 0 is 2 rows worse (p = 0.5): L2 makes no measurable difference.
    extra = {0.0: 2, 0.001: 30, 0.01: 0, 0.1: 400}
    lab = FakeLab(list(extra), wrong=lambda rate: 100 + extra[rate], rows=600)
    _, decision, _ = lab.read()
    assert decision.comparison_with("r0.001").apart and decision.l2_unmeasurable
    with caplog.at_level(logging.INFO, logger="pipeline.refine"):
        refine.refine(3, lab.read, lab.run)
    assert lab.rounds == []
    said = "L2 makes no measurable difference (rate 0 cannot be told apart from r0.01,"
    assert said in caplog.text

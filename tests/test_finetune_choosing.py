"""The decision over a fine-tuning sweep: the one-SE rule orders `l2_sp` entries of one start
by their `l2_sp` rates, `l2` entries as before, and falls back to `min` naming why when the
entries within one SE mix `l2` and `l2_sp` or start differently. Hand-made tables with known
answers; no Keras."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pipeline import choosing
from pipeline.config.entries import EntrySpec, Tuning
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.reporting.decision import fallback_words, verdict

LAYERS = ("hidden_1", "output")
WITH_START = ("hidden_1",)  # the output is a new head


def _entry(name, l2=0.0, sp=0.0, *, start=True, frozen=()):
    """A fine-tuning entry: `l2` on every layer, `l2_sp` on the layers with a start."""
    layer_rates = tuple((layer, 0.0 if layer in frozen else l2) for layer in LAYERS)
    sp_rates = tuple((layer, 0.0 if layer in frozen else sp) for layer in WITH_START)
    tuning = Tuning(start, sp_rates if start else (), tuple(frozen))
    return EntrySpec(name, layer_rates, 0.0, tuning=tuning)


def _decide(rows: list[tuple[EntrySpec, int]], rule: str = "one_se", n: int = 200):
    """rows: (entry, wrong validation rows of n); every label 0 and entry k wrong on its
    first k rows, so two entries disagree on the rows between their counts."""
    labels = np.zeros(n, dtype=np.int16)
    predicted = {}
    for spec, k in rows:
        predicted[spec.name] = labels.copy()
        predicted[spec.name][:k] = 1
    table = pd.DataFrame(
        [{"entry": spec.name, "val_error": k / n, "test_error": k / n} for spec, k in rows]
    ).assign(val_xent=0.0)
    table = table.sort_values("val_error", kind="stable").reset_index(drop=True)
    return choosing.decide(
        [spec for spec, _ in rows], table, choosing.Judge.of_classes(labels, predicted),
        rule=rule, seed=42, test_rows=100, task=CLASSIFICATION_TASK,
    )  # fmt: skip


# 200 rows: the SE of 0.10 is sqrt(0.1 * 0.9 / 200) ~ 0.021 (Wilson's a little more), so
# 24 wrong (0.12) is within one SE of 20 wrong and 30 (0.15) is not.
def test_one_se_takes_the_strongest_l2_sp_within_one_se_of_the_lowest():
    decision = _decide([
        (_entry("ft_0"), 30),
        (_entry("sp_1e_3", sp=1e-3), 20),
        (_entry("sp_1e_2", sp=1e-2), 23),  # within, and holds closer
        (_entry("sp_1e_1", sp=1e-1), 40),  # outside
    ])  # fmt: skip
    assert (decision.chosen.name, decision.choice.rule) == ("sp_1e_2", "one_se")
    # Its rates: l2 per layer, then l2_sp per layer with a start.
    assert decision.chosen.rates == (0.0, 0.0, 1e-2)
    assert decision.chosen.start == "the start model"
    # Rate 0 is the unregularized fine-tuned model, not an l2_sp entry with l2 0.
    assert decision.zero == "ft_0"


def test_an_entry_mixing_l2_and_l2_sp_within_one_se_makes_the_rule_fall_back_and_say_so():
    decision = _decide([
        (_entry("sp_1e_3", sp=1e-3), 20),
        (_entry("both", l2=1e-3, sp=1e-2), 22),
        (_entry("sp_1e_2", sp=1e-2), 23),
    ])  # fmt: skip
    assert (decision.chosen.name, decision.choice.rule) == ("sp_1e_3", "min")
    assert (decision.choice.fallback, decision.choice.unordered) == ("mixed", ("both",))
    assert fallback_words(decision) == (
        "both within one SE mixes l2 and l2_sp, which are not ordered against each other"
    )
    assert "chosen by min (asked one_se): sp_1e_3" in verdict(decision)


def test_entries_that_start_differently_are_not_ordered():
    scratch = _decide([
        (_entry("sp_1e_3", sp=1e-3), 20),
        (_entry("scratch_1e_2", l2=1e-2, start=False), 23),
    ])  # fmt: skip
    assert (scratch.chosen.name, scratch.choice.fallback) == ("sp_1e_3", "starts")
    assert scratch.choice.unordered == ("scratch_1e_2",)
    assert fallback_words(scratch) == (
        "the entries within one SE start differently (sp_1e_3 from the start model vs "
        "scratch_1e_2)"
    )
    frozen = _decide([
        (_entry("frozen_0", frozen=("hidden_1",)), 20),
        (_entry("sp_1e_2", sp=1e-2), 22),
    ])  # fmt: skip
    assert (frozen.chosen.name, frozen.choice.fallback) == ("frozen_0", "starts")
    assert frozen.chosen.start == "the start model, frozen hidden_1"


def test_l2_and_l2_sp_entries_of_one_start_are_not_ordered_against_each_other():
    decision = _decide([
        (_entry("l2_1e_2", l2=1e-2), 20),
        (_entry("sp_1e_2", sp=1e-2), 22),
    ])  # fmt: skip
    assert (decision.chosen.name, decision.choice.fallback) == ("l2_1e_2", "not_ordered")
    assert fallback_words(decision) == (
        "the entries within one SE are not ordered by rate (l2_1e_2 vs sp_1e_2: neither is "
        "more regularized on every layer's l2 and l2_sp rate)"
    )
    # Rate 0 of the same start is below both: the rule still picks among l2 entries alone.
    ordered = _decide([
        (_entry("ft_0"), 20),
        (_entry("l2_1e_3", l2=1e-3), 21),
        (_entry("l2_1e_2", l2=1e-2), 22),
    ])  # fmt: skip
    assert (ordered.chosen.name, ordered.choice.rule) == ("l2_1e_2", "one_se")


def test_the_decision_file_keeps_where_an_entry_starts_and_a_default_sweeps_file_has_no_such_key():
    decision = _decide([(_entry("sp_1e_3", sp=1e-3), 20), (_entry("both", 1e-3, 1e-2), 22)])
    payload = json.loads(json.dumps(decision.to_json()))
    assert payload["comparisons"][0]["other"]["mixes"] is True
    assert choosing.Decision.from_json(payload) == decision
    def plain(name, rate):  # no start model
        return EntrySpec(name, tuple((layer, rate) for layer in LAYERS), 0.0)

    default = _decide([(plain("l2_1e_2", 1e-2), 20), (plain("l2_0", 0.0), 30)])
    chosen = default.to_json()["choice"]["chosen"]
    assert set(chosen) == {"name", "value", "se", "rates"}
    assert choosing.Decision.from_json(default.to_json()) == default

"""The decision over a fine-tuning sweep: the one-SE rule orders `l2_sp` entries of one start
by their `l2_sp` rates, `l2` entries as before, and falls back to `min` naming why when the
entries within one SE mix `l2` and `l2_sp` or start differently. Hand-made tables with known
answers; no Keras."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline import choosing, refine
from pipeline.choosing.next_rates import bracket
from pipeline.config.entries import EntrySpec, Tuning
from pipeline.core.errors import DataError
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.reporting.decision import fallback_words, verdict
from tests.support.params import tiny_params, write_yaml

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


# 2000 rows: every pair differs on 100 rows or more, all one way: told apart after Holm.
SP_SWEEP = [
    (_entry("ft_0"), 600),
    (_entry("sp_1e_3", sp=1e-3), 300),
    (_entry("sp_1e_2", sp=1e-2), 200),
    (_entry("sp_1e_1", sp=1e-1), 400),
    (_entry("l2_1e_2", l2=1e-2), 350),  # the l2 axis: not a neighbour of an l2_sp rate
    (_entry("scratch_0", start=False), 900),  # another start
]


def _points_and_decision(rows, n=2000):
    decision = _decide(rows, rule="min", n=n)
    table = pd.DataFrame(
        [{"entry": spec.name, "val_error": k / n, "test_error": k / n} for spec, k in rows]
    ).sort_values("val_error", kind="stable")
    entries = [spec for spec, _ in rows]
    return choosing.place(entries, table, 300, 0.0, 1000, CLASSIFICATION_TASK), decision


def test_the_bracket_of_an_l2_sp_entry_proposes_l2_sp_rates_of_the_same_start():
    points, decision = _points_and_decision(SP_SWEEP)
    axes = {p.entry: (p.axis, p.rate) for p in points}
    assert axes["sp_1e_2"] == ("l2_sp", 1e-2) and axes["l2_1e_2"] == ("l2", 1e-2)
    around = bracket(points, decision, [spec.name for spec, _ in SP_SWEEP])
    assert around.axis == "l2_sp" and around.best.entry == "sp_1e_2"
    # Rate 0 of l2_sp is the unregularized fine-tuned model; l2 and scratch are off this axis.
    assert [p.entry for p in around.tried] == ["ft_0", "sp_1e_3", "sp_1e_2", "sp_1e_1"]
    assert around.proposed == (0.0022, 0.0046, 0.022, 0.046)
    assert dict(around.added) == {"l2_sp_2p2e_3": 0.0022, "l2_sp_4p6e_3": 0.0046,
                                  "l2_sp_2p2e_2": 0.022, "l2_sp_4p6e_2": 0.046}  # fmt: skip
    assert around.commands[0] == (
        "dvc exp run --queue -n next_sp_1e_2 -S '+sweep.l2_sp_2p2e_3={l2_sp: 0.0022}' "
        "-S '+sweep.l2_sp_4p6e_3={l2_sp: 0.0046}' -S '+sweep.l2_sp_2p2e_2={l2_sp: 0.022}' "
        "-S '+sweep.l2_sp_4p6e_2={l2_sp: 0.046}'"
    )
    # The added entry is what params.yaml would hold: an l2_sp entry, on the same axis.
    assert around.additions[0] == "+sweep.l2_sp_2p2e_3={l2_sp: 0.0022}"


def test_the_bracket_of_an_l2_entry_of_a_fine_tuning_sweep_keeps_to_l2_and_its_start():
    rows = [
        (_entry("ft_0"), 600),
        (_entry("sp_1e_3", sp=1e-3), 400),  # the l2_sp axis: not a neighbour of an l2 rate
        (_entry("l2_1e_2", l2=1e-2), 200),
        (_entry("l2_1e_1", l2=1e-1), 450),
        (_entry("scratch_1e_3", l2=1e-3, start=False), 300),  # another start
    ]
    points, decision = _points_and_decision(rows)
    around = bracket(points, decision, [spec.name for spec, _ in rows])
    assert (decision.chosen.name, around.axis) == ("l2_1e_2", "l2")
    assert [p.entry for p in around.tried] == ["ft_0", "l2_1e_2", "l2_1e_1"]
    assert around.commands[0] == (
        "dvc exp run --queue -n next_1e_2 -S '+sweep.l2_2p2e_3={l2: 0.0022}' "
        "-S '+sweep.l2_4p6e_3={l2: 0.0046}' -S '+sweep.l2_2p2e_2={l2: 0.022}' "
        "-S '+sweep.l2_4p6e_2={l2: 0.046}'"
    )


def test_refine_adds_l2_sp_entries_when_an_l2_sp_entry_is_chosen():
    points, decision = _points_and_decision(SP_SWEEP)
    runs = []

    def read():
        return points, decision, [spec.name for spec, _ in SP_SWEEP]

    best = refine.refine(1, read, lambda k, added, axis: runs.append((k, dict(added), axis)))
    ((k, added, axis),) = runs
    assert (k, axis) == (1, "l2_sp") and set(added) == {"l2_sp_2p2e_3", "l2_sp_4p6e_3",
                                                        "l2_sp_2p2e_2", "l2_sp_4p6e_2"}  # fmt: skip
    assert best == [1e-2]  # the lowest on the l2_sp axis (the fake lab's rounds train nothing)


def test_refine_with_a_start_model_needs_the_sweep_record_and_says_so(tmp_path):
    params = tiny_params()
    params["model"]["start_from"] = "pretrained/source.keras"
    write_yaml(tmp_path / "params.yaml", params)
    folders = [tmp_path / name for name in ("metrics", "evaluation", "prepared", "refit")]
    with pytest.raises(DataError, match=r"sweep.json: missing or unreadable; run `dvc repro"):
        refine.read_points(tmp_path / "params.yaml", *folders, tmp_path / "models")


def _analysed(rows, n=2000):
    decision = _decide(rows, rule="min", n=n)
    table = pd.DataFrame(
        [{"entry": spec.name, "val_error": k / n, "test_error": k / n} for spec, k in rows]
    ).sort_values("val_error", kind="stable")
    predicted = {spec.name: np.where(np.arange(n) < k, 1, 0) for spec, k in rows}
    judge = choosing.Judge.of_classes(np.zeros(n, dtype=np.int16), predicted)
    return choosing.analyse(
        [spec for spec, _ in rows], table, judge, layers=LAYERS, default_rows=300,
        default_noise=0.0, pool_rows=1000, decision=decision, task=CLASSIFICATION_TASK,
    )  # fmt: skip


def test_the_layer_grid_of_a_fine_tuning_sweep_compares_entries_of_the_chosen_start():
    hidden_from_start = EntrySpec("hidden_1e_2", (("hidden_1", 1e-2), ("output", 0.0)), 0.0,
                                  tuning=Tuning(True, (("hidden_1", 0.0),)))  # fmt: skip
    hidden_from_scratch = EntrySpec("scratch_hidden", (("hidden_1", 1e-2), ("output", 0.0)), 0.0)
    rows = [
        (_entry("ft_0"), 600),
        (_entry("l2_1e_2", l2=1e-2), 200),
        (hidden_from_start, 300),
        (_entry("scratch_0", start=False), 150),
        (hidden_from_scratch, 100),
    ]
    # Chosen from scratch: the grid holds the scratch entries.
    found = _analysed(rows)
    assert found.decision.chosen.name == "scratch_hidden"
    assert found.grid.at["hidden_1", 0.01] == 0.05 and found.grid.at["hidden_1", 0.0] == 0.075
    # Chosen from the start model: the scratch entries, better at the same (layer, rate), are
    # another model and stay out of its grid.
    rows[-1] = (hidden_from_scratch, 250)
    rows[-2] = (_entry("scratch_0", start=False), 260)
    found = _analysed(rows)
    assert found.decision.chosen.name == "l2_1e_2"
    assert found.grid.at["hidden_1", 0.01] == 0.15 and found.grid.at["all", 0.01] == 0.1
    assert found.grid.at["hidden_1", 0.0] == 0.3


def test_the_verdict_says_which_model_rate_0_is_and_when_the_chosen_one_starts_elsewhere():
    """In a fine-tuning sweep rate 0 is the start trained without a penalty; a scratch entry
    measurably better than it differs in its start too, and the verdict says so."""
    held = _decide([(_entry("ft_0"), 60), (_entry("sp_1e_2", sp=1e-2), 20)], rule="min")
    assert held.chosen.name == "sp_1e_2"
    assert verdict(held).endswith(
        "; L2 helps: rate 0 (ft_0: fine-tuned without a penalty) is measurably worse"
    )
    scratch = _decide([(_entry("ft_0"), 60), (_entry("scratch", start=False), 20)], rule="min")
    assert scratch.chosen.name == "scratch"
    assert verdict(scratch).endswith(
        "; rate 0 (ft_0: fine-tuned without a penalty) is measurably worse; scratch"
        " starts from scratch, rate 0 from the start model: their difference is the start's as"
        " much as the penalty's"
    )

"""Choosing L2 from a sweep's table: the decision, the layer heatmap and its verdict, the
data-equivalent sizes and the bracket of rates to try next, on hand-made tables with known
answers. The logic is asserted on the data choosing/ returns; one test pins the text of
choosing.md that reporting/ renders from it."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline import choosing
from pipeline.choosing.layers import layer_grid, tied_cells
from pipeline.choosing.next_rates import (
    EXP_SHOW_BEST,
    NO_DIFFERENCE,
    OFF_AXIS,
    new_entries,
    sweep_additions,
)
from pipeline.config.entries import EntrySpec, dense_layer_names
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.reporting import choosing_page
from pipeline.reporting.decision import interval_words
from tests.support.choosing_md import decision_table, next_claims, section

LAYERS = dense_layer_names(2)
Z = 1.959963984540054  # the normal 97.5% quantile


def _entry(name, rates, **kwargs):
    if isinstance(rates, float):
        rates = [rates] * len(LAYERS)
    return EntrySpec(name, tuple(zip(LAYERS, rates, strict=True)), 0.0, **kwargs)


def _decay(name, decay):
    return EntrySpec(name, tuple((layer, 0.0) for layer in LAYERS), decay)


def _judge(wrong_rows: dict[str, int], n: int) -> choosing.Judge:
    """Every label 0; entry -> it gets the first k rows wrong (class 1), so any two entries
    disagree on exactly the rows between their counts, all one way: the exact McNemar p of
    d discordant rows is 2 * 0.5**d."""
    labels = np.zeros(n, dtype=np.int16)
    predicted = {}
    for entry, k in wrong_rows.items():
        predicted[entry] = labels.copy()
        predicted[entry][:k] = 1
    return choosing.Judge.of_classes(labels, predicted)


def _sweep(rows, n, **entry_args):
    """rows: (entry spec, wrong rows of n[, test error]) -> entries, a ranked table like
    table.sweep_table's, and the judge of their validation rows (pool entries have none)."""
    entries = [spec for spec, *_ in rows]
    frame = pd.DataFrame(
        [
            {"entry": spec.name, "val_error": k / n, "test_error": rest[0] if rest else k / n}
            for spec, k, *rest in rows
        ]
    ).assign(val_xent=0.0)
    table = frame.sort_values("val_error", kind="stable").reset_index(drop=True)
    judge = _judge({spec.name: k for spec, k, *_ in rows if not spec.uses_pool}, n)
    return entries, table, judge


def _analyse(entries, table, judge, decision=None):
    return choosing.analyse(
        entries, table, judge, layers=LAYERS, default_rows=300, default_noise=0.2,
        pool_rows=1000, decision=decision, task=CLASSIFICATION_TASK,
    )  # fmt: skip


def _decided(entries, table, judge, rule="min"):
    """The analysis with its decision, as the report makes it (the decision judges the
    bracket's pairs)."""
    decision = choosing.decide(
        entries, table, judge, rule=rule, seed=42, test_rows=100, task=CLASSIFICATION_TASK
    )
    return _analyse(entries, table, judge, decision)


# 200 validation rows.
LAYER_SWEEP = [
    (_entry("g0", 0.0), 60),
    (_entry("g2_all", 0.01), 24),
    (_entry("g2_h1", [0.01, 0.0, 0.0]), 56),
    (_entry("g2_h2", [0.0, 0.01, 0.0]), 25),
    (_entry("g2_out", [0.0, 0.0, 0.01]), 58),
    (_entry("g1_all", 0.1), 180),
    (_entry("g1_h2", [0.0, 0.1, 0.0]), 40),
]


def test_the_heatmap_is_layers_by_rates_and_names_the_layer_that_matters():
    analysis = _analyse(*_sweep(LAYER_SWEEP, 200))
    heatmap = choosing_page.plot_data(analysis)["layer_heatmap"]
    heatmap = heatmap.set_index(["layer", "l2_rate"])["val_error"]
    assert heatmap[("hidden_2", 0.01)] == 0.125
    assert heatmap[("output", 0.0)] == 0.30  # rate 0 fills its column for every layer
    assert heatmap[("all", 0.1)] == 0.90
    assert ("hidden_1", 0.1) not in heatmap.index  # not trained: no cell
    verdict = analysis.layers
    assert (verdict.top.entry, verdict.runner.other.entry) == ("g2_h2", "g2_h1")
    assert verdict.runner.apart and verdict.vs_zero.apart
    # 25 vs 24 wrong rows: one discordant row, p = 1: as good as all layers.
    assert (verdict.vs_all.other.entry, verdict.vs_all.p_value) == ("g2_all", 1.0)
    assert not verdict.vs_all.apart
    assert not verdict.top_is_largest  # 0.1 was tried on hidden_2 alone too


def test_a_layer_alone_told_apart_from_all_layers_is_not_as_good():
    rows = [(spec, 32 if spec.name == "g2_h2" else k) for spec, k in LAYER_SWEEP]
    verdict = _analyse(*_sweep(rows, 200)).layers
    # g2_h2 (32 wrong) is still hidden_2's best (g1_h2: 40) and the best layer alone.
    assert verdict.top.entry == "g2_h2"
    assert verdict.vs_all.p_value == pytest.approx(2 * 0.5**8)  # 8 rows, all one way
    assert verdict.vs_all.apart and verdict.top.val > verdict.vs_all.other.val


def test_the_bracket_lies_between_the_best_rate_and_its_neighbours_with_its_commands():
    counts = [(0.0, 600), (0.001, 580), (0.003, 460), (0.01, 240), (0.03, 540), (0.1, 1800)]
    rows = [(_entry(f"r{i}", rate), k) for i, (rate, k) in enumerate(counts)]
    bracket = _decided(*_sweep(rows, 2000)).bracket
    assert (bracket.best.rate, bracket.lower.rate, bracket.upper.rate) == (0.01, 0.003, 0.03)
    assert bracket.proposed == (0.0045, 0.0067, 0.014, 0.021)
    assert [n.point.rate for n in bracket.apart] == [0.003, 0.03] and bracket.tied == ()
    # One experiment adds all four to the sweep as it is (no `~sweep`: every entry kept).
    assert bracket.commands == (
        "dvc exp run --queue -n next_1e_2 -S '+sweep.l2_4p5e_3={l2: 0.0045}'"
        " -S '+sweep.l2_6p7e_3={l2: 0.0067}' -S '+sweep.l2_1p4e_2={l2: 0.014}'"
        " -S '+sweep.l2_2p1e_2={l2: 0.021}'",
        "dvc queue start",
        EXP_SHOW_BEST,
    )
    assert bracket.added == (
        ("l2_4p5e_3", 0.0045), ("l2_6p7e_3", 0.0067), ("l2_1p4e_2", 0.014), ("l2_2p1e_2", 0.021)
    )


def test_a_new_entry_never_takes_the_name_of_an_entry_with_other_settings():
    # DVC's `+sweep.<name>=` replaces an entry of that name: `l2_4p5e_3` here is weight decay,
    # and `L2_6P7E_3` differs only in case (the same metrics file on a case-blind disk).
    counts = [(0.0, 600), (0.001, 580), (0.003, 460), (0.01, 240), (0.03, 540), (0.1, 1800)]
    rows = [(_entry(f"r{i}", rate), k) for i, (rate, k) in enumerate(counts)]
    rows += [(_decay("l2_4p5e_3", 0.02), 700), (_decay("L2_6P7E_3", 0.02), 700)]
    bracket = _decided(*_sweep(rows, 2000)).bracket
    assert [name for name, _ in bracket.added] == [
        "l2_4p5e_3_v2", "l2_6p7e_3_v2", "l2_1p4e_2", "l2_2p1e_2"
    ]
    assert "-S '+sweep.l2_4p5e_3_v2={l2: 0.0045}'" in bracket.commands[0]
    assert "+sweep.l2_4p5e_3=" not in bracket.commands[0]
    taken = ["l2_1e_4", "l2_1e_4_v2"]
    assert new_entries([1e-4, 4.5e-5], taken) == {"l2_1e_4_v3": 1e-4, "l2_4p5e_5": 4.5e-5}
    assert sweep_additions({"l2_4p5e_5": 4.5e-5}) == ["+sweep.l2_4p5e_5={l2: 4.5e-05}"]


def test_a_plateau_and_a_lone_entry_get_no_bracket():
    plateau = [(_entry("r1", 0.001), 22), (_entry("r2", 0.01), 20), (_entry("r3", 0.1), 21)]
    bracket = _decided(*_sweep(plateau, 200)).bracket
    assert (bracket.proposed, bracket.commands, bracket.held) == ((), (), "")
    assert [n.point.entry for n in bracket.tied] == ["r1", "r3"]
    lone = _decided(*_sweep([(_entry("r2", 0.01), 20)], 200)).bracket
    assert (lone.lower, lone.upper, lone.proposed) == (None, None, ())


def test_the_data_equivalent_interpolates_rate_0_on_a_log_scale():
    # Rate 0: 0.40 at 100, 0.30 at 400, 0.20 at 1600; L2 at 100 rows reaches 0.30 -> 400,
    # at 400 rows 0.25 -> 800 (halfway on the log scale), at 1600 rows 0.10 -> never.
    sizes = [
        (100, 0.0, 0.40), (100, 0.01, 0.30), (400, 0.0, 0.30), (400, 0.01, 0.25),
        (1600, 0.0, 0.20), (1600, 0.01, 0.10),
    ]  # fmt: skip
    rows = [
        (_entry(f"n{n}_r{i}", rate, train_size=n), round(err * 200), err)
        for i, (n, rate, err) in enumerate(sizes)
    ]
    analysis = _analyse(*_sweep(rows, 200))
    assert set(analysis.curves["series"]) == {"rate 0", "best rate"}
    found = {(e.noise, e.size): e for e in analysis.equivalents}
    assert set(found) == {(0.2, 100), (0.2, 400), (0.2, 1600)}
    assert found[(0.2, 100)].samples == pytest.approx(400)
    assert found[(0.2, 400)].samples == pytest.approx(800)
    never = found[(0.2, 1600)]
    assert (never.samples, never.no_gain, never.largest, never.largest_value) == (
        None, False, 1600, 0.20,
    )  # fmt: skip


# 200 validation rows. r2 gets 20 wrong; r1 22 and r0 24 (2 and 4 discordant rows: McNemar
# p = 0.5 and 0.125); r3 60 (40 discordant, p ~ 2e-12).
PAIRED = {"r0": (0.0, 24), "r1": (0.001, 22), "r2": (0.01, 20), "r3": (0.1, 60)}


def _paired(counts):
    return _sweep([(_entry(name, rate), k) for name, (rate, k) in counts.items()], 200)


def test_the_decision_names_what_the_paired_test_cannot_tell_apart_and_l2_against_rate_0():
    entries, table, judge = _paired(PAIRED)
    decision = choosing.decide(
        entries, table, judge, rule="min", seed=42, test_rows=100, task=CLASSIFICATION_TASK
    )
    assert decision.chosen.name == "r2"
    # The Wilson SE: sqrt(n p (1 - p) + z²/4) / (n + z²), 20 of 200 rows.
    assert decision.chosen.se == pytest.approx(math.sqrt(18 + Z * Z / 4) / (200 + Z * Z), abs=1e-15)
    by_name = {c.other.name: c for c in decision.comparisons}
    assert by_name["r1"].test.p_value == pytest.approx(0.5, abs=1e-12)  # 2 of 2 one way
    assert by_name["r0"].test.p_value == pytest.approx(0.125, abs=1e-12)  # 4 of 4 one way
    # Holm over three: 0.125 is the second smallest, times 2.
    assert by_name["r0"].p_adjusted == pytest.approx(0.25, abs=1e-12)
    assert by_name["r3"].apart and not by_name["r1"].apart
    assert decision.tied == ["r1", "r0"]
    assert decision.l2_measurable is False
    assert (decision.figure, decision.test, decision.correction) == (
        "val_error", "exact McNemar", "Holm",
    )  # fmt: skip
    assert decision.test_ci_low < 0.1 < decision.test_ci_high
    # The contract refit writes and report reads: the same decision after a trip through JSON.
    assert choosing.Decision.from_json(json.loads(json.dumps(decision.to_json()))) == decision
    # Below 0.01 the neighbour cannot be told apart; above, 0.1 is measurably worse, but rate
    # 0 cannot be told apart from 0.01: L2 makes no measurable difference, and no new rate
    # could change that, so nothing is proposed on either side.
    bracket = _analyse(entries, table, judge, decision=decision).bracket
    assert [n.point.entry for n in bracket.tied] == ["r1"]
    assert [n.point.entry for n in bracket.apart] == ["r3"]
    assert (bracket.held, bracket.proposed, bracket.commands) == (NO_DIFFERENCE, (), ())


def test_a_neighbour_counts_as_told_apart_only_where_the_decision_table_says_so():
    # The page: 0.003 differs from the chosen 0.01 on 8 rows, all one way (exact
    # McNemar p = 2 / 2**8 = 0.0078), but Holm over the decision's 10 comparisons makes it
    # 8 * 0.0078 = 0.0625 (second smallest: rate 0 and 0.03 differ on 40 rows, seven
    # weight-decay entries on 7 rows, p = 0.0156 each).
    decay = [_decay(f"decay_{i}", 1.0 + i) for i in range(7)]
    rows = [(_entry("l2_0", 0.0), 60), (_entry("l2_3e_3", 0.003), 28)]
    rows += [(_entry("l2_1e_2", 0.01), 20), (_entry("l2_3e_2", 0.03), 60)]
    rows += [(spec, 27) for spec in decay]
    entries, table, judge = _sweep(rows, 200)
    analysis = _decided(entries, table, judge)
    decision, bracket = analysis.decision, analysis.bracket
    assert judge.apart("l2_1e_2", "l2_3e_3")  # alone, unadjusted: "told apart"
    below = decision.comparison_with("l2_3e_3")
    assert below.test.p_value == pytest.approx(2 / 2**8, abs=1e-15)
    assert below.p_adjusted == pytest.approx(8 * 2 / 2**8, abs=1e-15) and not below.apart
    # The bracket asks the table: below 0.01 is a plateau, above it 0.03 is worse.
    assert [n.point.entry for n in bracket.tied] == ["l2_3e_3"]
    assert [n.point.entry for n in bracket.apart] == ["l2_3e_2"]
    assert bracket.proposed == (0.014, 0.021)
    text = choosing_page.markdown(analysis, task=CLASSIFICATION_TASK)
    assert "0.01 **cannot be told apart** from 0.003 (l2_3e_3, Holm-adjusted p = 0.0625)" in text
    claims = next_claims(text)
    assert set(claims) == {"l2_3e_3", "l2_3e_2"}
    assert all(decision_table(text)[entry] == claim for entry, claim in claims.items())
    # The page's one command adds both rates to the sweep, whose entries all stay.
    block = section(text, "What to try next").split("```bash\n")[1].split("```")[0]
    assert block.splitlines() == [
        "dvc exp run --queue -n next_1e_2 -S '+sweep.l2_1p4e_2={l2: 0.014}'"
        " -S '+sweep.l2_2p1e_2={l2: 0.021}'",
        "dvc queue start",
        EXP_SHOW_BEST,
    ]
    assert "added to the sweep in one queued experiment (every entry and setting kept" in text


def test_the_bracket_centres_on_the_chosen_entry_and_none_off_the_rate_axis():
    # one_se chooses 0.1 (23 wrong, within one SE of 0.01's 20): the bracket is around it.
    entries, table, judge = _paired({**PAIRED, "r3": (0.1, 23), "r0": (0.0, 60)})
    bracket = _decided(entries, table, judge, rule="one_se").bracket
    assert (bracket.best.entry, bracket.lower.entry, bracket.upper) == ("r3", "r2", None)
    # A weight-decay entry chosen: no pair of rates is in the Decision table, no bracket.
    decay = _decay("decay", 3.0)
    rows = [(_entry("r0", 0.0), 60), (_entry("r2", 0.01), 20), (_entry("r3", 0.1), 60)]
    rows.append((decay, 15))
    analysis = _decided(*_sweep(rows, 200))
    assert analysis.decision.chosen.name == "decay"
    bracket = analysis.bracket
    assert (bracket.held, bracket.best.entry) == (OFF_AXIS, "r2")
    assert (bracket.tied, bracket.apart, bracket.proposed, bracket.commands) == ((), (), (), ())
    assert "is not one L2 rate on all layers" in choosing_page.markdown(
        analysis, task=CLASSIFICATION_TASK
    )
    # ... and with rate 0 one row behind it, the answer is that L2 makes no difference.
    rows[0] = (_entry("r0", 0.0), 16)
    analysis = _decided(*_sweep(rows, 200))
    assert (analysis.bracket.held, analysis.bracket.proposed) == (NO_DIFFERENCE, ())
    assert "no new rate could change that answer" in choosing_page.markdown(
        analysis, task=CLASSIFICATION_TASK
    )
    # No decision (every entry diverged): nothing judges a pair, no bracket.
    assert _analyse(*_sweep(rows, 200)).bracket is None


def test_zero_errors_are_shown_with_their_wilson_bound_and_a_nonzero_se():
    rows = [(_entry("r0", 0.0), 5), (_entry("r2", 0.01), 0), (_entry("r3", 0.1), 10)]
    entries, table, judge = _sweep(rows, 50)
    decision = choosing.decide(
        entries, table, judge, rule="min", seed=42, test_rows=100, task=CLASSIFICATION_TASK
    )
    # 0 of 50: the Wilson upper bound is z² / (n + z²), the SE z / (2 (n + z²)).
    upper = Z * Z / (50 + Z * Z)
    assert decision.chosen.se == pytest.approx(Z / (2 * (50 + Z * Z)), abs=1e-15)
    text = choosing_page.markdown(
        _analyse(entries, table, judge, decision=decision), task=CLASSIFICATION_TASK
    )
    said = f"validation error 0.000, at most {upper:.3f} at 95% (Wilson, 0 of 50 validation rows)"
    assert said in text
    assert f"{upper:.3f}" == "0.071" and "± 0.000" not in text


def test_an_error_is_written_with_its_wilson_interval_at_0_n_and_between():
    edge = Z * Z / (50 + Z * Z)  # Wilson's bound at 0 (upper) and n (1 - lower) of 50
    assert interval_words(0.0, 50, "validation rows") == (
        "0.000, at most 0.071 at 95% (Wilson, 0 of 50 validation rows)"
    )
    assert interval_words(1.0, 50, "test rows") == (
        "1.000, at least 0.929 at 95% (Wilson, 50 of 50 test rows)"
    )
    assert (f"{edge:.3f}", f"{1 - edge:.3f}") == ("0.071", "0.929")
    # 10 of 100: (p + z²/2n) / (1 + z²/n) -/+ z / (1 + z²/n) sqrt(p(1-p)/n + z²/4n²).
    centre = (0.1 + Z * Z / 200) / (1 + Z * Z / 100)
    half = Z / (1 + Z * Z / 100) * math.sqrt(0.09 / 100 + Z * Z / 40000)
    assert interval_words(0.1, 100, "test rows") == (
        f"0.100, 95% interval [{centre - half:.3f}, {centre + half:.3f}] (Wilson, 10 of 100 "
        f"test rows)"
    )


def test_one_se_picks_the_most_regularized_entry_within_one_se():
    # r3 now gets 23 wrong (0.115), within 0.10 + 0.0212 of r2: the largest rate there.
    entries, table, judge = _paired({**PAIRED, "r3": (0.1, 23)})
    decision = choosing.decide(
        entries, table, judge, rule="one_se", seed=42, test_rows=100, task=CLASSIFICATION_TASK
    )
    assert (decision.chosen.name, decision.choice.best.name, decision.choice.rule) == (
        "r3",
        "r2",
        "one_se",
    )


def test_the_heatmap_marks_the_cells_a_paired_test_cannot_tell_from_the_best():
    counts = {"g0": 60, "g2_all": 20, "g2_h1": 60, "g2_h2": 22, "g2_out": 58}
    rows = [(spec, counts[spec.name]) for spec, _ in LAYER_SWEEP if spec.name in counts]
    entries, table, judge = _sweep(rows, 200)
    points = choosing.place(entries, table, 300, 0.2, 1000, task=CLASSIFICATION_TASK)
    grid = layer_grid(points, LAYERS)
    assert tied_cells(points, grid, judge) == {("all", 0.01), ("hidden_2", 0.01)}


CHOOSING_MD = """\
# Choosing L2

## Decision

Rule **min**: the lowest validation error.

**Chosen: r2**, validation error 0.100, 95% interval [0.066, 0.149] (Wilson, 20 of 200 \
validation rows); its SE is 0.021 (half that interval over 1.96; one validation sample is \
0.0050).
Its test error is 0.100, 95% interval [0.055, 0.174] (Wilson, 10 of 100 test rows); reported, \
not used to choose.

Chosen by min: r2, validation error 0.100, 95% interval [0.066, 0.149] (Wilson, 20 of 200 \
validation rows); cannot be told apart from 2 of 3 other entries (exact McNemar, Holm, p >= \
0.05): r1, r0; L2 makes no measurable difference here (rate 0 cannot be told apart).

Against every other candidate on the same 200 held-out rows: rows only one of the two gets \
wrong, the exact McNemar p-value, Holm's adjustment over the 3 comparisons, and a paired \
bootstrap 95% interval of the error difference (other - chosen).

| entry | validation error ± SE | only chosen wrong | only other wrong | McNemar p | Holm p \
| difference 95% | told apart |
|---|---|---|---|---|---|---|---|
| r1 | 0.110 ± 0.022 | 0 | 2 | 0.5 | 0.5 | [+0.000, +0.025] | no |
| r0 | 0.120 ± 0.023 | 0 | 4 | 0.125 | 0.25 | [+0.005, +0.040] | no |
| r3 | 0.300 ± 0.032 | 0 | 40 | 1.82e-12 | 5.46e-12 | [+0.145, +0.255] | yes |

## What to try next

The chosen rate, **0.01** (r2, validation error 0.100; all layers, data's training split); \
neighbours tried: 0.001 (0.110), 0.1 (0.300). Each pair is judged as in the Decision table \
(exact McNemar, Holm-adjusted over its 3 comparisons).

0.01 **cannot be told apart** from 0.001 (r1, Holm-adjusted p = 0.5): a rate between them \
would sit on the same plateau and could not change the decision, so no bracket is proposed on \
that side. More validation rows (more data) or more seeds (`base.repeat_seeds`) would narrow it.
0.01 beats 0.1 (r3, Holm-adjusted p = 5.46e-12).

L2 makes no measurable difference here: rate 0 (r0) cannot be told apart from r2 \
(Holm-adjusted p = 0.25, the Decision table's), and no new rate could change that answer, so \
no bracket is proposed.
"""


def test_choosing_md_renders_the_decision_and_the_answers():
    entries, table, judge = _paired(PAIRED)
    decision = choosing.decide(
        entries, table, judge, rule="min", seed=42, test_rows=100, task=CLASSIFICATION_TASK
    )
    text = choosing_page.markdown(
        _analyse(entries, table, judge, decision=decision), task=CLASSIFICATION_TASK
    )
    assert text == CHOOSING_MD
    # Read back as a user reads it: every pair "What to try next" judges is a row of the
    # Decision table, with the same adjusted p and the same verdict.
    claims = next_claims(text)
    assert claims == {"r1": ("0.5", False), "r3": ("5.46e-12", True), "r0": ("0.25", False)}
    assert all(decision_table(text)[entry] == claim for entry, claim in claims.items())

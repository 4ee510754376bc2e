"""Choosing L2 from a sweep's table: the layer heatmap and its verdict, the data-equivalent
sentence, and the bracket of rates to try next, on hand-made tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline import choosing
from pipeline.choosing.layers import layer_grid, tied_cells
from pipeline.config.entries import EntrySpec, dense_layer_names

LAYERS = dense_layer_names(2)
VAL_ROWS = 270


def _entry(name, rates, **kwargs):
    if isinstance(rates, float):
        rates = [rates] * len(LAYERS)
    return EntrySpec(name, tuple(zip(LAYERS, rates, strict=True)), 0.0, **kwargs)


def _table(rows):
    """rows: (entry, val, test[, val_std]) -> a ranked table like table.sweep_table's."""
    frame = pd.DataFrame(
        [{"entry": r[0], "val_error": r[1], "test_error": r[2]} for r in rows]
    ).assign(val_cross_entropy=0.0)
    if any(len(r) > 3 for r in rows):
        frame["val_error_mean"] = [r[1] for r in rows]
        frame["val_error_std"] = [r[3] for r in rows]
        frame["test_error_mean"] = [r[2] for r in rows]
        frame["test_error_std"] = 0.0
    return frame.sort_values("val_error", kind="stable").reset_index(drop=True)


def _analyse(entries, table, grid_is_set=True):
    return choosing.analyse(
        entries,
        table,
        layers=LAYERS,
        default_rows=300,
        default_noise=0.2,
        pool_rows=1000,
        val_rows=VAL_ROWS,
        grid_is_set=grid_is_set,
    )


LAYER_SWEEP = [
    (_entry("g0", 0.0), 0.30, 0.31),
    (_entry("g2_all", 0.01), 0.12, 0.13),
    (_entry("g2_h1", [0.01, 0.0, 0.0]), 0.28, 0.29),
    (_entry("g2_h2", [0.0, 0.01, 0.0]), 0.125, 0.14),
    (_entry("g2_out", [0.0, 0.0, 0.01]), 0.29, 0.30),
    (_entry("g1_all", 0.1), 0.90, 0.90),
    (_entry("g1_h2", [0.0, 0.1, 0.0]), 0.20, 0.21),
]


def test_the_heatmap_is_layers_by_rates_and_names_the_layer_that_matters():
    entries = [e for e, *_ in LAYER_SWEEP]
    table = _table([(e.name, v, t) for e, v, t in LAYER_SWEEP])
    data, figures, markdown = _analyse(entries, table)
    heatmap = data["layer_heatmap"].set_index(["layer", "l2_rate"])["val_error"]
    assert heatmap[("hidden_2", 0.01)] == 0.125
    assert heatmap[("output", 0.0)] == 0.30  # rate 0 fills its column for every layer
    assert heatmap[("all", 0.1)] == 0.90
    assert ("hidden_1", 0.1) not in heatmap.index  # not trained: no cell
    assert "layer_heatmap" in figures
    assert "**hidden_2's L2 matters most**" in markdown
    # 0.125 vs 0.12 is about one validation sample of 270 (0.0037): as good as all layers.
    assert "hidden_2 alone is **as good as** all layers" in markdown


def test_a_layer_alone_worse_than_all_layers_beyond_the_seed_spread_is_said_so():
    entries = [e for e, *_ in LAYER_SWEEP]
    table = _table([(e.name, v, t, 0.005) for e, v, t in LAYER_SWEEP])
    table.loc[table["entry"] == "g2_h2", ["val_error", "val_error_mean"]] = 0.16
    _, _, markdown = _analyse(entries, table)
    assert "hidden_2 alone is **not as good as** all layers" in markdown
    assert "more than the seed spread (0.005)" in markdown


def test_the_bracket_lies_between_the_best_rate_and_its_neighbours():
    sweep = [(0.0, 0.30), (0.001, 0.29), (0.003, 0.23), (0.01, 0.12), (0.03, 0.27), (0.1, 0.9)]
    entries = [_entry(f"r{i}", rate) for i, (rate, _) in enumerate(sweep)]
    table = _table([(f"r{i}", val, val) for i, (_, val) in enumerate(sweep)])
    _, figures, markdown = _analyse(entries, table, grid_is_set=False)
    assert "next_rates" in figures
    best, lower, upper, proposed = choosing.next_rates(
        choosing.place(entries, table, 300, 0.2, 1000)
    )
    assert (best.rate, lower.rate, upper.rate) == (0.01, 0.003, 0.03)
    assert proposed == [0.0045, 0.0067, 0.014, 0.021]
    assert (
        "dvc exp run --queue -n next_4p5e_3 -S '~sweep' -S '+sweep={l2_4p5e_3: {l2: 0.0045}}'"
        in markdown.splitlines()
    )
    assert "dvc queue start" in markdown
    assert "set `base.repeat_seeds`" in markdown  # one seed: no claim about the spread


@pytest.mark.parametrize(
    ("std", "expected"),
    [
        (0.002, "0.01 beats 0.003 (by more than the seed spread (0.002))"),
        (0.05, "0.01 **cannot be told apart** from 0.003 (within the seed spread (0.050))"),
    ],
)
def test_with_seeds_the_best_rate_must_beat_its_neighbours_by_the_spread(std, expected):
    sweep = [(0.003, 0.15), (0.01, 0.12), (0.03, 0.16)]
    entries = [_entry(f"r{i}", rate) for i, (rate, _) in enumerate(sweep)]
    table = _table([(f"r{i}", val, val, std) for i, (_, val) in enumerate(sweep)])
    _, _, markdown = _analyse(entries, table)
    assert expected in markdown


def test_the_data_equivalent_interpolates_rate_0_on_a_log_scale():
    # Rate 0: 0.40 at 100, 0.30 at 400, 0.20 at 1600; L2 at 100 rows reaches 0.30 -> 400,
    # at 400 rows 0.25 -> 800 (halfway on the log scale), at 1600 rows 0.10 -> never.
    rows = [
        (100, 0.0, 0.40), (100, 0.01, 0.30), (400, 0.0, 0.30), (400, 0.01, 0.25),
        (1600, 0.0, 0.20), (1600, 0.01, 0.10),
    ]  # fmt: skip
    entries = [_entry(f"n{n}_r{i}", rate, train_size=n) for i, (n, rate, _) in enumerate(rows)]
    table = _table([(e.name, err, err) for e, (_, _, err) in zip(entries, rows, strict=True)])
    data, _, markdown = _analyse(entries, table)
    curves = data["error_vs_train_size"]
    assert set(curves["series"]) == {"rate 0", "best rate"}
    assert "at 100 samples, L2 at rate 0.01 reaches the error that rate 0 needs about 400" in (
        markdown
    )
    assert "at 400 samples, L2 at rate 0.01 reaches the error that rate 0 needs about 800" in (
        markdown
    )
    assert "the curves do not cross within the grid" in markdown
    assert "With label noise 0.2:" in markdown


def _held_out(wrong_rows: dict[str, int], n: int = 200) -> choosing.HeldOut:
    """Every label 0; entry -> it gets the first k rows wrong (class 1), so any two entries
    disagree on exactly the rows between their counts."""
    labels = np.zeros(n, dtype=np.int16)
    predicted = {}
    for entry, k in wrong_rows.items():
        predicted[entry] = labels.copy()
        predicted[entry][:k] = 1
    return choosing.HeldOut(labels, predicted)


# 200 validation rows. r2 gets 20 wrong; r1 22 and r0 24 (2 and 4 discordant rows: McNemar
# p = 0.5 and 0.125); r3 60 (40 discordant, p ~ 2e-12).
PAIRED = {"r0": (0.0, 24), "r1": (0.001, 22), "r2": (0.01, 20), "r3": (0.1, 60)}


def _paired_sweep(counts):
    entries = [_entry(name, rate) for name, (rate, _) in counts.items()]
    table = _table([(name, k / 200, k / 200) for name, (_, k) in counts.items()])
    return entries, table, _held_out({name: k for name, (_, k) in counts.items()})


def test_the_decision_names_what_the_paired_test_cannot_tell_apart_and_l2_against_rate_0():
    entries, table, held_out = _paired_sweep(PAIRED)
    decision = choosing.decide(entries, table, held_out, rule="min", seed=42, test_rows=100)
    assert decision.chosen.name == "r2"
    assert decision.chosen.se == pytest.approx(math.sqrt(0.1 * 0.9 / 200), abs=1e-15)
    by_name = {c.other.name: c for c in decision.comparisons}
    assert by_name["r1"].test.p_value == pytest.approx(0.5, abs=1e-12)  # 2 of 2 one way
    assert by_name["r0"].test.p_value == pytest.approx(0.125, abs=1e-12)  # 4 of 4 one way
    # Holm over three: 0.125 is the second smallest, times 2.
    assert by_name["r0"].p_holm == pytest.approx(0.25, abs=1e-12)
    assert by_name["r3"].apart and not by_name["r1"].apart
    assert decision.tied == ["r1", "r0"]
    assert decision.l2_measurable is False
    assert "L2 makes no measurable difference here" in decision.verdict()
    headline = decision.headline()
    assert (headline["rule"], headline["chosen_entry"], headline["cv_error_mean"]) == (
        "min",
        "r2",
        0.1,
    )
    assert headline["indistinguishable"] == "r1,r0"
    assert headline["test_error_ci_low"] < 0.1 < headline["test_error_ci_high"]
    _, _, markdown = choosing.analyse(
        entries,
        table,
        layers=LAYERS,
        default_rows=300,
        default_noise=0.2,
        pool_rows=1000,
        val_rows=200,
        grid_is_set=False,
        held_out=held_out,
        decision=decision,
    )
    assert "## Decision" in markdown and "**Chosen: r2**" in markdown
    # Below 0.01 the neighbour cannot be told apart: no bracket there; above, 0.1 is
    # measurably worse, so the bracket looks between 0.01 and 0.1 only.
    assert "0.01 **cannot be told apart** from 0.001" in markdown
    _, lower, upper, proposed = choosing.next_rates(
        choosing.place(entries, table, 300, 0.2, 1000),
        lambda a, b: not choosing.indistinguishable(a, b, 200, held_out),
    )
    assert (lower.entry, upper.entry, proposed) == ("r1", "r3", [0.022, 0.046])


def test_one_se_picks_the_most_regularized_entry_within_one_se():
    # r3 now gets 23 wrong (0.115), within 0.10 + 0.0212 of r2: the largest rate there.
    entries, table, held_out = _paired_sweep({**PAIRED, "r3": (0.1, 23)})
    decision = choosing.decide(entries, table, held_out, rule="one_se", seed=42, test_rows=100)
    assert (decision.chosen.name, decision.choice.best.name, decision.choice.rule) == (
        "r3",
        "r2",
        "one_se",
    )
    assert "The lowest is r2" in "\n".join(decision.markdown())


def test_a_plateau_and_a_lone_entry_get_no_bracket():
    plateau = {"r1": (0.001, 22), "r2": (0.01, 20), "r3": (0.1, 21)}
    entries, table, held_out = _paired_sweep(plateau)
    points = choosing.place(entries, table, 300, 0.2, 1000)
    distinct = lambda a, b: not choosing.indistinguishable(a, b, 200, held_out)  # noqa: E731
    assert choosing.next_rates(points, distinct)[3] == []
    lone_entries, lone_table, _ = _paired_sweep({"r2": (0.01, 20)})
    assert choosing.next_rates(choosing.place(lone_entries, lone_table, 300, 0.2, 1000))[3] == []


def test_the_heatmap_marks_the_cells_a_paired_test_cannot_tell_from_the_best():
    counts = {"g0": 60, "g2_all": 20, "g2_h1": 60, "g2_h2": 22, "g2_out": 58}
    entries = [e for e, *_ in LAYER_SWEEP if e.name in counts]
    table = _table([(name, k / 200, k / 200) for name, k in counts.items()])
    held_out = _held_out(counts)
    points = choosing.place(entries, table, 300, 0.2, 1000)
    grid = layer_grid(points, LAYERS)
    assert tied_cells(points, grid, 200, held_out) == {("all", 0.01), ("hidden_2", 0.01)}
    _, _, markdown = choosing.analyse(
        entries,
        table,
        layers=LAYERS,
        default_rows=300,
        default_noise=0.2,
        pool_rows=1000,
        val_rows=200,
        grid_is_set=False,
        held_out=held_out,
    )
    assert "| hidden_2 alone | 0.300 | 0.110 ≈ |" in markdown
    assert "| all layers | 0.300 | 0.100 ≈ |" in markdown

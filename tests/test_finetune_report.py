"""The report of a fine-tuning sweep: each entry's start, `l2_sp` rates and frozen layers
beside its `l2` rates, its distance from the start per layer (the metric names evaluate
writes), and the plot of that distance against the `l2_sp` rate. Built from metrics and
evaluation files written here the way evaluate writes them; no Keras."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from pipeline import report
from pipeline.config.entries import EntrySpec, Tuning
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.reporting import fine_tuning, table

LAYERS = ("conv_1", "dense", "output")
WITH_START = ("conv_1", "dense")  # the output is a new head


def _entry(name, l2=0.0, sp=0.0, *, start=True, frozen=()):
    layer_rates = tuple((layer, 0.0 if layer in frozen else l2) for layer in LAYERS)
    sp_rates = tuple((layer, 0.0 if layer in frozen else sp) for layer in WITH_START)
    return EntrySpec(
        name, layer_rates, 0.0, tuning=Tuning(start, sp_rates if start else (), tuple(frozen))
    )


ENTRIES = (
    _entry("ft_0"),
    _entry("sp_1e_2", sp=1e-2),
    _entry("sp_1e_1", sp=1e-1),
    _entry("l2_1e_2", l2=1e-2),
    _entry("frozen_conv", sp=1e-2, frozen=("conv_1",)),
    _entry("scratch", l2=1e-3, start=False),
)
# entry -> validation error; the distances shrink as l2_sp grows: ||w - w0|| / ||w0|| of
# conv_1 and dense (sq_dist = rel_dist² · ||w0||², with ||w0||² = 4 and 9).
VAL = {"ft_0": 0.2, "sp_1e_2": 0.1, "sp_1e_1": 0.15, "l2_1e_2": 0.18, "frozen_conv": 0.12,
       "scratch": 0.4}  # fmt: skip
REL = {"ft_0": (0.5, 0.6), "sp_1e_2": (0.2, 0.3), "sp_1e_1": (0.05, 0.1), "l2_1e_2": (0.4, 0.5),
       "frozen_conv": (0.0, 0.25)}  # fmt: skip


def _metrics(entry: EntrySpec) -> dict:
    """One model's metrics as evaluate writes them: sq_dist_/rel_dist_ per layer with a start,
    sum_sq_dist and l2_sp_penalty only for an entry from the start model."""
    found = {name: 0.3 for name in table.COLUMNS[3:]} | {"val_error": VAL[entry.name]}
    found |= {f"sq_weights_{layer}": 1.0 for layer in LAYERS}
    if entry.tuning.from_start:
        norms = dict(zip(WITH_START, (4.0, 9.0), strict=True))
        sq = {layer: rel**2 * norms[layer] for layer, rel in zip(WITH_START, REL[entry.name],
                                                                  strict=True)}  # fmt: skip
        found |= {f"sq_dist_{layer}": value for layer, value in sq.items()}
        found |= {f"rel_dist_{layer}": rel for layer, rel in zip(WITH_START, REL[entry.name],
                                                                 strict=True)}  # fmt: skip
        found["sum_sq_dist"] = sum(sq.values())
        found["l2_sp_penalty"] = sum(
            rate * sq[layer] for layer, rate in entry.tuning.sp_rates
        )
    return found


@pytest.fixture
def sweep(tmp_path) -> pd.DataFrame:
    for folder in ("metrics", "details"):
        (tmp_path / folder).mkdir()
    for entry in ENTRIES:
        metrics = _metrics(entry)
        (tmp_path / "metrics" / f"{entry.name}.json").write_text(json.dumps(metrics))
        details = {"seeds": [{"metrics": metrics}]}
        (tmp_path / "details" / f"{entry.name}.json").write_text(json.dumps(details))
    return table.sweep_table(
        ENTRIES, tmp_path / "metrics", tmp_path / "details", CLASSIFICATION_TASK, True
    )


def test_the_table_shows_each_entrys_start_l2_sp_and_frozen_layers_and_its_distances(sweep):
    columns = list(sweep.columns)
    assert columns[:6] == ["entry", "l2_rates", "weight_decay", "start", "l2_sp_rates", "frozen"]
    at = columns.index("sum_sq_weights")
    assert columns[at : at + 3] == ["sum_sq_weights", "l2_sp_penalty", "sum_sq_dist"]
    per_layer = [c for c in columns if c.startswith(("sq_dist_", "rel_dist_"))]
    assert per_layer == ["sq_dist_conv_1", "sq_dist_dense", "rel_dist_conv_1", "rel_dist_dense"]
    rows = sweep.set_index("entry")
    assert rows.loc["sp_1e_2", ["start", "l2_sp_rates", "frozen"]].tolist() == [
        "start model", "0.01", ""]  # fmt: skip
    assert rows.loc["frozen_conv", ["l2_sp_rates", "frozen"]].tolist() == ["0 / 0.01", "conv_1"]
    assert rows.loc["scratch", ["start", "l2_sp_rates", "l2_rates"]].tolist() == [
        "scratch", "", "0.001"]  # fmt: skip
    # 0.1 * (0.05² * 4 + 0.1² * 9): the pull toward the start at the final weights.
    assert rows.at["sp_1e_1", "l2_sp_penalty"] == pytest.approx(0.1 * (0.01 + 0.09))
    assert rows.at["sp_1e_1", "sum_sq_dist"] == pytest.approx(0.1)
    assert math.isnan(rows.at["scratch", "sum_sq_dist"])  # no start, no distance


def test_the_sweep_page_names_l2_sp_and_lists_its_rates_per_layer(sweep):
    by_name = {e.name: e for e in ENTRIES}
    page = table.to_markdown(sweep, by_name, task=CLASSIFICATION_TASK)
    assert "**sp_1e_2** (L2-SP 0.01): val error 0.1000" in page
    header = next(line for line in page.splitlines() if line.startswith("| entry"))
    assert header.startswith("| entry | l2_rates | weight_decay | start | l2_sp_rates | frozen |")
    assert "| frozen_conv | 0 | 0 | start model | 0 / 0.01 | conv_1 |" in page
    assert table.regularizer_label(_entry("both", l2=1e-3, sp=1e-2)) == "L2 0.001 + L2-SP 0.01"
    per_layer = fine_tuning.sp_rates_by_layer([by_name[e] for e in sweep["entry"]])
    assert per_layer.splitlines()[2:5] == [
        "| entry | conv_1 | dense |", "|---|---|---|", "| sp_1e_2 | 0.01 | 0.01 |"]  # fmt: skip


def test_distance_from_the_start_is_plotted_per_layer_against_the_l2_sp_rate(sweep):
    trained = list(sweep["entry"])
    rates = fine_tuning.sp_axis(ENTRIES, trained)
    # l2, frozen layers and scratch are other axes: ft_0 is rate 0 of l2_sp.
    assert rates == {"ft_0": 0.0, "sp_1e_2": 1e-2, "sp_1e_1": 1e-1}
    assert report.rate_axis(ENTRIES, trained, fine_tuning=True) == {"ft_0": 0.0, "l2_1e_2": 1e-2}
    data = fine_tuning.distance_by_sp_rate(sweep, rates)
    assert list(data.columns) == fine_tuning.DISTANCE_PLOT_COLUMNS
    dense = data[data["series"] == "dense"]
    assert dense["entry"].tolist() == ["ft_0", "sp_1e_2", "sp_1e_1"]
    assert dense["rel_dist"].tolist() == [0.6, 0.3, 0.1]
    assert dense["sq_dist"].tolist() == pytest.approx([0.36 * 9, 0.09 * 9, 0.01 * 9])
    assert dense["log10_rate"].tolist() == pytest.approx([-3.0, -2.0, -1.0])
    figure = fine_tuning.distance_figure(data)
    legend = figure.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["conv_1", "dense"]


def test_a_sweep_without_a_start_model_gets_no_fine_tuning_column_and_a_header_only_plot(tmp_path):
    plain = EntrySpec("l2_1e_2", tuple((layer, 1e-2) for layer in LAYERS), 0.0)
    metrics = {name: 0.3 for name in table.COLUMNS[3:]}
    for folder in ("metrics", "details"):
        (tmp_path / folder).mkdir()
    (tmp_path / "metrics" / "l2_1e_2.json").write_text(json.dumps(metrics))
    details = {"seeds": [{"metrics": metrics}]}
    (tmp_path / "details" / "l2_1e_2.json").write_text(json.dumps(details))
    found = table.sweep_table((plain,), tmp_path / "metrics", tmp_path / "details",
                              CLASSIFICATION_TASK)  # fmt: skip
    assert list(found.columns) == [*table.COLUMNS, "diverged_at_epoch"]
    assert table.regularizer_label(plain) == "L2 0.01"
    data = fine_tuning.distance_by_sp_rate(found, fine_tuning.sp_axis((plain,), ["l2_1e_2"]))
    out = tmp_path / "distance.csv"
    data.to_csv(out, index=False, float_format="%.5g")
    assert out.read_text() == "entry,l2_sp_rate,log10_rate,series,sq_dist,rel_dist\n"

"""The report of a fine-tuning sweep: each entry's start, `l2_sp` rates and frozen layers
beside its `l2` rates, its distance from the start per layer (the metric names evaluate
writes), and the plot of that distance against the `l2_sp` rate. Built from metrics and
evaluation files written here the way evaluate writes them; no Keras."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline import choosing, report
from pipeline.config import load_config, resolve_entries
from pipeline.config.entries import EntrySpec, Tuning
from pipeline.core import contracts
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.reporting import fine_tuning, table
from tests.support.params import tiny_params, write_yaml

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
    assert fine_tuning.distances_section(sweep.drop(columns="start")) == ""  # no start model
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


# The whole report stage over a fine-tuning sweep's outputs, written by hand as train,
# evaluate and refit leave them (core/contracts.py); the start model has hidden_1 and a new
# head `output`.
FT_LAYERS = ("hidden_1", "output")
FT_SWEEP = {  # entry -> (sweep entry, wrong validation rows of 200, rel_dist of hidden_1)
    "ft_0": ({}, 60, 0.5),
    "sp_1e_2": ({"l2_sp": 0.01}, 20, 0.2),
    "sp_1e_1": ({"l2_sp": 0.1}, 23, 0.05),
    "l2_1e_2": ({"l2": 0.01}, 40, 0.4),
    "scratch": ({"start_from": None}, 90, None),
}


def _write_fine_tuning_sweep(root):
    for folder in ("data/prepared", "evaluation", "metrics", "models", "refit"):
        (root / folder).mkdir(parents=True)
    params = tiny_params()
    params["model"]["start_from"] = "pretrained/source.keras"
    params["sweep"] = {name: entry for name, (entry, _, _) in FT_SWEEP.items()}
    params["choose"]["rule"] = "one_se"
    write_yaml(root / "params.yaml", params)
    rows = {"train": 80, "val": 200, "test": 100}
    contracts.write_meta(root / "data/prepared", contracts.PreparedMeta(
        source="digits", class_names=tuple("0123456789"), n_features=64, rows=rows,
        train_labels_flipped=0, input_shape=(64,), pool_rows=80,
    ))  # fmt: skip
    labels = np.zeros(rows["val"], dtype=np.int16)
    held_out, kernels = {}, {}
    for name, (_, wrong, rel) in FT_SWEEP.items():
        metrics = {c: 0.3 for c in table.COLUMNS[3:]} | {"val_error": wrong / 200}
        metrics |= {f"sq_weights_{layer}": 1.0 for layer in FT_LAYERS}
        if rel is not None:  # ||w0||² of hidden_1 is 4
            metrics |= {"sq_dist_hidden_1": 4 * rel**2, "rel_dist_hidden_1": rel,
                        "sum_sq_dist": 4 * rel**2, "l2_sp_penalty": 0.0}  # fmt: skip
        baseline = {"predictor": "majority class", "prediction": 0, "train_error": 0.9,
                    "val_error": 0.9, "test_error": 0.9}  # fmt: skip
        details = {"seeds": [{"seed": 42, "metrics": metrics}], "baseline": baseline}
        contracts.write_json(root / f"evaluation/{name}.json", details)
        contracts.write_json(root / f"metrics/{name}.json", metrics)
        folder = contracts.model_dir(root / "models", name)
        folder.mkdir(parents=True)
        pd.DataFrame({"epoch": [1, 2], "train_error": [0.5, 0.3], "val_error": [0.6, 0.4],
                      "data_loss": [1.0, 0.8], "l2_penalty": [0.0, 0.0]}).to_csv(
            folder / contracts.HISTORY_FILE, index=False)  # fmt: skip
        held_out[name] = np.where(np.arange(rows["val"]) < wrong, 1, 0)
        kernels |= {f"{name}/{layer}": np.full((4, 4), 0.1) for layer in FT_LAYERS}
    np.savez(root / "evaluation" / contracts.HELD_OUT_FILE,
             **{contracts.HELD_OUT_LABELS: labels}, **held_out)  # fmt: skip
    np.savez(root / "evaluation" / contracts.KERNELS_FILE, **kernels)
    towers = tuple(contracts.TrainedModel(name, 42, name, None) for name in FT_SWEEP)
    record = contracts.SweepRecord(towers, FT_LAYERS, ("hidden_1",), FT_LAYERS, True)
    contracts.write_sweep_record(root / "models", record)
    entries = resolve_entries(load_config(root / "params.yaml"), record)
    frame = pd.DataFrame([{"entry": n, "val_error": w / 200, "test_error": 0.3, "val_xent": 0.0}
                          for n, (_, w, _) in FT_SWEEP.items()]).sort_values("val_error")
    decision = choosing.decide(
        entries, frame, choosing.Judge.of_classes(labels, held_out), rule="one_se", seed=42,
        test_rows=rows["test"], task=CLASSIFICATION_TASK,
    )  # fmt: skip
    contracts.write_json(root / "refit" / contracts.REFIT_FILE, {"refit": 0})
    contracts.write_decision(root / "refit", decision.to_json())


def test_the_report_stage_shows_a_fine_tuning_sweep(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    _write_fine_tuning_sweep(root)
    report.report(
        root / "params.yaml", root / "metrics", root / "evaluation", root / "models",
        root / "data/prepared", root / "reports", root / "refit",
    )  # fmt: skip
    reports = root / "reports"
    csv = pd.read_csv(reports / "sweep.csv").set_index("entry")
    assert csv.at["sp_1e_1", "l2_sp_rates"] == 0.1 and csv.at["scratch", "start"] == "scratch"
    assert csv.at["sp_1e_2", "rel_dist_hidden_1"] == 0.2
    sweep_md = (reports / "sweep.md").read_text()
    assert "## L2-SP rate per layer (toward the start)" in sweep_md
    # The one-SE rule: sp_1e_1 (23 wrong) is within one SE of sp_1e_2 (20) and holds closer.
    choosing_md = (reports / "choosing.md").read_text()
    assert "**Chosen: sp_1e_1**" in choosing_md
    assert "The chosen l2_sp rate (toward the start), **0.1**" in choosing_md
    # Its neighbour on the l2_sp axis is 0.01, not the l2 entry at 0.01.
    assert "0.1 **cannot be told apart** from 0.01 (sp_1e_2, Holm-adjusted p = 0.25)" in choosing_md
    assert "| sp_1e_1 | start model | 0 | 0.1 |  | 0.01 | 0.05 |" in choosing_md
    assert "| scratch | scratch | 0 |  |  |  |  |" in choosing_md
    distance = pd.read_csv(reports / "plots" / f"{fine_tuning.DISTANCE_PLOT}.csv")
    assert distance["entry"].tolist() == ["ft_0", "sp_1e_2", "sp_1e_1"]
    assert distance["rel_dist"].tolist() == [0.5, 0.2, 0.05]
    assert (reports / "plots" / f"{fine_tuning.DISTANCE_PLOT}.png").read_bytes()[:4] == b"\x89PNG"
    # The l2 axis of a fine-tuning sweep: the entries from the start model only.
    error_vs_rate = pd.read_csv(reports / "plots" / "error_vs_rate.csv")
    assert set(error_vs_rate["entry"]) == {"ft_0", "l2_1e_2"}


def test_dvc_yaml_plots_the_distance_csv_with_a_template_that_labels_its_l2_sp_rates():
    from ruamel.yaml import YAML

    from tests.support.params import ROOT

    plots = YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["plots"]
    path = f"reports/plots/{fine_tuning.DISTANCE_PLOT}.csv"
    (spec,) = [next(iter(p.values())) for p in plots if isinstance(p, dict)
               and path in next(iter(p.values()))["y"]]  # fmt: skip
    assert (spec["x"], spec["y"][path]) == ("log10_rate", "rel_dist")
    assert {"log10_rate", "rel_dist", "l2_sp_rate"} <= set(fine_tuning.DISTANCE_PLOT_COLUMNS)
    template = json.loads((ROOT / spec["template"]).read_text())
    axis = template["layer"][0]["encoding"]["x"]["axis"]
    assert "'l2_sp_rate'" in axis["labelExpr"]
    # Committed beside the default sweep's plots, header only: dvc plots show finds it.
    assert (ROOT / path).read_text() == ",".join(fine_tuning.DISTANCE_PLOT_COLUMNS) + "\n"

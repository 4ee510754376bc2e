"""The sweep report: its table, plots (DVC and PNG), and the MLflow parent run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from pipeline import choosing
from pipeline.config.entries import EntrySpec
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.reporting import plots
from pipeline.reporting.table import COLUMNS, rank, rate_converter, rates_by_layer, to_markdown
from tests.support.project import Project, children_of, mlflow_runs, parent_of_models, parent_runs

PLOT_FILES = (
    "error_vs_rate",
    "sq_weights_vs_rate",
    "near_linear_vs_rate",
    "learning_curves_error",
    "learning_curves_loss",
)
FIGURES = (
    "error_vs_rate",
    "sq_weights_vs_rate",
    "near_linear_vs_rate",
    "learning_curves",
    "weight_histograms",
    "next_rates",  # the bracket of rates to try next (pipeline/choosing/)
)


def test_rate_zero_sits_one_decade_below_the_smallest_rate():
    assert plots.zero_position([0.0, 1e-4, 0.1]) == pytest.approx(-5.0)
    assert plots.zero_position([0.0, 3e-3]) == pytest.approx(-4.0)
    table = pd.DataFrame({"entry": ["a", "b", "c", "mixed"], "val_error": [0.1, 0.2, 0.3, 0.4]})
    rows = plots.by_rate(table, {"a": 0.01, "b": 0.0, "c": 0.001})
    assert list(rows["entry"]) == ["b", "c", "a"]  # by rate; the per-layer entry is left out
    assert list(rows["log10_rate"]) == pytest.approx([-4.0, -3.0, -2.0])


def test_rate_converter_follows_each_convention():
    text = rate_converter({"x": 0.01}, batch_size=32, train_rows=300, task=CLASSIFICATION_TASK)
    # sklearn alpha = 2 * batch * c; textbook lambda = 2 * m * c; SGD weight decay = 2c.
    assert "| x | 0.01 | 0.64 | 6 | 0.02 |" in text
    assert "under Adam it is not" in text


def test_figures_draw_every_entry():
    histories = {
        e: pd.DataFrame(
            {
                "epoch": [1, 2],
                "train_error": [0.5, 0.4],
                "val_error": [0.6, 0.5],
                "data_loss": [1.0, 0.9],
                "l2_penalty": [0.1, 0.05],
            }
        )
        for e in ("a", "b")
    }
    fig = plots.curves_figure(histories, ["a", "b"], task=CLASSIFICATION_TASK)
    errors_ax, losses_ax = fig.axes
    assert len(errors_ax.lines) == 4 and len(losses_ax.lines) == 4  # 2 entries x 2 series
    rng = np.random.default_rng(0)
    kernels = {
        e: {"hidden_1": rng.normal(size=(4, 3)), "output": rng.normal(size=(3, 2))}
        for e in ("a", "b")
    }
    assert len(plots.histograms_figure(kernels, ["a", "b"]).axes) == 2


def test_a_grid_of_thirty_entries_and_an_empty_rate_axis_draw_without_warnings(tmp_path):
    """A grid's 30 names inside a panel left the weight histograms' axes no height
    (matplotlib: "constrained_layout not applied"); a sweep with no entry on the rate axis
    (all on their own training sets) asked for a legend of nothing."""
    import warnings

    rng = np.random.default_rng(0)
    names = [f"grid_{i}_all_n100" for i in range(30)]
    kernels = {
        e: {"hidden_1": rng.normal(size=(8, 4)), "output": rng.normal(size=(4, 2))} for e in names
    }
    empty = pd.DataFrame(columns=["series", "log10_rate", "l2_rate", "error"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        histograms = plots.histograms_figure(kernels, names)
        histograms.savefig(tmp_path / "histograms.png")
        plots.rate_figure(empty, "error", title="t", ylabel="e").savefig(tmp_path / "rate.png")
    (legend,) = histograms.legends
    assert [t.get_text() for t in legend.get_texts()] == names


@pytest.mark.slow
def test_report_writes_plots_and_fills_the_sweeps_parent_run(reproduced: Project):
    project = reproduced
    reports = project.root / "reports"
    table = pd.read_csv(reports / "sweep.csv")
    assert list(table["val_error"]) == sorted(table["val_error"])
    assert {"near_linear_share", "saturated_share"} <= set(table.columns)
    assert not any("run_id" in column for column in table.columns)  # git tracks sweep.csv
    assert table["near_linear_share"].between(0, 1).all()
    assert "sklearn alpha" in (reports / "sweep.md").read_text()
    best = json.loads((reports / "best.json").read_text())
    assert best["best_entry"] == table["entry"][0]
    # The decision: min picks the lowest validation error, with its Wilson SE on the same
    # validation rows, and names what the paired test cannot tell apart from it.
    val_rows = json.loads((project.root / "data/prepared/meta.json").read_text())["rows"]["val"]
    # best.json is a DVC metrics file: numbers, and best_entry for `dvc exp show`; the
    # decision's strings are in decision.json.
    assert {k for k, v in best.items() if not isinstance(v, int | float)} == {"best_entry"}
    said = json.loads((reports / "decision.json").read_text())
    assert (said["rule"], said["chosen_entry"]) == ("min", table["entry"][0])
    assert (said["figure"], said["test_figure"]) == ("val_error", "test_error")
    assert best["chosen_figure"] == pytest.approx(table["val_error"][0], abs=1e-5)
    error, z = best["chosen_figure"], 1.959963984540054
    # Half the 95% Wilson interval over z: sqrt(n p (1 - p) + z²/4) / (n + z²), not 0 at 0 errors.
    se = math.sqrt(val_rows * error * (1 - error) + z * z / 4) / (val_rows + z * z)
    assert best["chosen_se"] == pytest.approx(se, 1e-4)
    wrong = round(error * val_rows)
    assert f"(Wilson, {wrong} of {val_rows} validation rows)" in said["verdict"]
    assert best["answer_ci_low"] <= best["answer"] <= best["answer_ci_high"]
    assert len(said["indistinguishable"]) == best["n_tied"]
    held_out = np.load(project.root / "evaluation" / "held_out.npz")
    assert set(held_out.files) == {"labels", *table["entry"]}
    assert len(held_out["labels"]) == val_rows
    for row in table.itertuples():  # the predictions are the models' validation errors
        wrong = np.mean(held_out[row.entry] != held_out["labels"])
        assert wrong == pytest.approx(row.val_error, abs=1e-4)
    choosing_md = (reports / "choosing.md").read_text()
    assert "## Decision" in choosing_md and f"**Chosen: {said['chosen_entry']}**" in choosing_md
    assert "Cannot be told apart from it by a paired test" in (reports / "sweep.md").read_text()
    for name in PLOT_FILES:
        assert len(pd.read_csv(reports / "plots" / f"{name}.csv")) > 0, name
    for name in FIGURES:
        assert (reports / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    curves = pd.read_csv(reports / "plots" / "learning_curves_error.csv")
    epochs = YAML(typ="safe").load(project.params_path.read_text())["train"]["epochs"]
    assert len(curves) == len(table) * 2 * epochs  # every entry, train and val, every epoch
    error_vs_rate = pd.read_csv(reports / "plots" / "error_vs_rate.csv")
    assert set(error_vs_rate["entry"]) == {"plain"}  # `layerwise` has no single rate

    # `dvc plots show` renders every declared plot into one HTML page.
    project.dvc("plots", "show", "--out", "dvc_plots")
    html = (project.root / "dvc_plots" / "index.html").read_text()
    for title in ("Error vs L2 rate", "Learning curves, error", "weight_histograms.png"):
        assert title in html, title

    # MLflow: the parent run that `train` made holds the table and plots; every model run
    # is nested under it.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri())
    runs = mlflow_runs(project)
    (parent,) = parent_runs(runs)
    assert parent_of_models(project, runs).info.run_id == parent.info.run_id
    children = children_of(runs, parent.info.run_id)
    assert sorted(r.info.run_name for r in children) == sorted(table["entry"])
    assert parent.data.metrics["best_val_error"] == pytest.approx(table["val_error"][0])
    assert parent.data.tags["best_entry"] == table["entry"][0]
    # The tiny params keep 80 of the digits' training rows and flip 16 labels: the report's
    # header, choosing.md and the parent run's description say so, in the same sentence.
    note = "Training data changed on purpose: 80 of 1077 training rows kept"
    assert (reports / "sweep.md").read_text().split("\n\n")[1].startswith(note)
    assert (reports / "choosing.md").read_text().split("\n\n")[1].startswith(note)
    assert note in parent.data.tags["mlflow.note.content"]
    assert said["verdict"] in parent.data.tags["mlflow.note.content"]
    assert said["data_note"].startswith(note)
    assert parent.data.metrics["chosen_se"] == pytest.approx(best["chosen_se"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.csv", "sweep.md", "plots"} <= artifacts
    pngs = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {f"plots/{name}.png" for name in FIGURES} == pngs
    # The compare view lines up: every model run has the rate param and the test_error metric.
    for child in children:
        assert "l2" in child.data.params and "test_error" in child.data.metrics

    # A record cut short (no results digest yet) is done again by the next `dvc repro`, into
    # the same parent run; this project being a copy, into the copy's store.
    logged_table = project.root / "mlartifacts" / parent.info.run_id / "artifacts" / "sweep.md"
    logged_table.unlink()
    client.delete_tag(parent.info.run_id, "results_digest")
    project.dvc("repro")
    assert [r.info.run_id for r in parent_runs(mlflow_runs(project))] == [parent.info.run_id]
    assert logged_table.read_text() == (reports / "sweep.md").read_text()


def test_sweep_md_renders_the_ranked_table_the_decision_and_the_conventions():
    """The sweep page's text, pinned: a diverged entry last, the decision's chosen entry and
    what the judge cannot tell from it, the per-layer rates (another builder than the MLP)
    and the rate converter."""
    layers = ("hidden_1", "output")
    entries = {
        name: EntrySpec(name, tuple(zip(layers, rates, strict=True)), decay)
        for name, rates, decay in [
            ("plain", (0.0, 0.0), 0.0), ("l2", (0.01, 0.01), 0.0), ("decay", (0.0, 0.0), 3.0),
            ("boom", (1e38, 1e38), 0.0),
        ]
    }  # fmt: skip
    errors = {"l2": (0.1, 0.12), "decay": (0.11, 0.13), "plain": (0.3, 0.31)}
    rows = pd.DataFrame(
        {
            "entry": [*errors, "boom"],
            "l2_rates": [entries[e].rates_label for e in [*errors, "boom"]],
            "weight_decay": [entries[e].weight_decay for e in [*errors, "boom"]],
            **{c: [0.5, 0.5, 0.5, math.nan] for c in COLUMNS[3:]},
            "diverged_at_epoch": [math.nan, math.nan, math.nan, 2],
        }
    )
    rows["val_error"] = [v for v, _ in errors.values()] + [math.nan]
    rows["test_error"] = [t for _, t in errors.values()] + [math.nan]
    ranked = rank(rows, task=CLASSIFICATION_TASK)
    assert list(ranked["entry"]) == ["l2", "decay", "plain", "boom"]
    labels = np.zeros(200, dtype=np.int16)
    predicted = {e: np.where(np.arange(200) < k, 1, 0) for e, k in
                 {"l2": 20, "decay": 22, "plain": 60}.items()}  # fmt: skip
    judge = choosing.Judge.of_classes(labels, predicted)
    decision = choosing.decide(
        list(entries.values()),
        ranked,
        judge,
        rule="min",
        seed=42,
        test_rows=100,
        task=CLASSIFICATION_TASK,
    )
    text = to_markdown(ranked, entries, decision, task=CLASSIFICATION_TASK)
    text += "\n" + rates_by_layer({e: entries[e].layer_rates for e in ranked["entry"]})
    text += "\n" + rate_converter(
        {"plain": 0.0, "l2": 0.01}, batch_size=32, train_rows=300, task=CLASSIFICATION_TASK
    )
    assert text == SWEEP_MD


SWEEP_MD = """\
# L2 sweep

Best on validation error: **l2** (L2 0.01): val error 0.1000, test error 0.1200 (reported, \
not used to choose).

Chosen by min: **l2**. Cannot be told apart from it by a paired test on the same held-out \
rows (exact McNemar, Holm): decay. See `choosing.md`, Decision.

**boom diverged at epoch 2** (loss NaN or infinite): it has no figures.

| entry | l2_rates | weight_decay | train_error | val_error | test_error | \
gen_gap | val_xent | train_xent | l2_penalty | \
sum_sq_weights | near_linear_share | saturated_share |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| l2 | 0.01 | 0 | 0.5 | 0.1 | 0.12 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 |
| decay | 0 | 3 | 0.5 | 0.11 | 0.13 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 |
| plain | 0 | 0 | 0.5 | 0.3 | 0.31 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 | 0.5 |
| boom | 1e+38 | 0 | diverged at epoch 2 |  |  |  |  |  |  |  |  |  |

## L2 rate per layer

| entry | hidden_1 | output |
|---|---|---|
| l2 | 0.01 | 0.01 |
| decay | 0 | 0 |
| plain | 0 | 0 |
| boom | 1e+38 | 1e+38 |

## The same rates in other conventions

Keras adds c·Σw² to the mean loss of each batch. scikit-learn's MLPClassifier adds \
alpha/(2n)·Σw² with n the batch size for its adam and sgd solvers, so c = alpha / (2·batch \
size) (batch size 32). The textbook penalty λ/(2m)·Σw² over m = 300 training rows gives c = \
λ/(2m). Under plain SGD an L2 rate c is the same update as decoupled weight decay 2c (the \
penalty's gradient is 2c·w); under Adam it is not, because Adam rescales the penalty's \
gradient per weight while AdamW's decay is not rescaled.

| entry | Keras rate c | sklearn alpha | textbook λ | SGD weight decay |
|---|---|---|---|---|
| plain | 0 | 0 | 0 | 0 |
| l2 | 0.01 | 0.64 | 6 | 0.02 |
"""


def test_dvc_plot_titles_state_the_near_linear_threshold_the_code_uses():
    from pipeline.core.contracts import NEAR_LINEAR_Z
    from tests.support.params import ROOT

    titles = [
        next(iter(plot)) if isinstance(plot, dict) else plot
        for plot in YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["plots"]
    ]
    assert any(f"|z| < {NEAR_LINEAR_Z:g}" in title for title in titles), titles


def test_the_spread_of_the_total_squared_weights_is_one_column(tmp_path):
    """With repeat seeds, `sum_sq_weights_mean/_std` are spread columns, listed once."""
    from pipeline.reporting.table import sweep_table

    layers = (("hidden_1", 0.0), ("output", 0.0))
    spread = CLASSIFICATION_TASK.spread_metrics()
    metrics = {name: 0.5 for name in spread}
    metrics |= {"sq_weights_hidden_1": 2.0, "sq_weights_output": 1.0}
    for folder in ("metrics", "details"):
        (tmp_path / folder).mkdir()
    headline = {
        **metrics,
        **{f"{name}_mean": 0.5 for name in spread},
        **{f"{name}_std": 0.0 for name in spread},
        "n_seeds": 3,
    }
    (tmp_path / "metrics" / "plain.json").write_text(json.dumps(headline))
    details = {"seeds": [{"metrics": metrics}]}
    (tmp_path / "details" / "plain.json").write_text(json.dumps(details))
    entries = (EntrySpec("plain", layers, 0.0),)
    table = sweep_table(
        entries, tmp_path / "metrics", tmp_path / "details", task=CLASSIFICATION_TASK
    )
    assert len(set(table.columns)) == len(table.columns), list(table.columns)
    assert list(table.columns).count("sum_sq_weights_mean") == 1


def test_error_vs_rate_carries_a_standard_error_band():
    table = pd.DataFrame(
        {
            "entry": ["a", "b"],
            "train_error": [0.0, 0.5],
            "val_error": [0.1, 0.2],
            "test_error": [0.1, 0.3],
            "cv_error_mean": [0.15, 0.25],
            "cv_error_se": [0.01, 0.02],
        }
    )
    rows = plots.by_rate(table, {"a": 0.0, "b": 0.01})
    errors = plots.error_by_rate(
        rows, {"train": 50, "val": 100, "test": 200}, task=CLASSIFICATION_TASK
    )
    se = errors.set_index(["entry", "series"])["error_se"]
    assert se[("a", "val")] == pytest.approx(math.sqrt(0.1 * 0.9 / 100), abs=1e-15)
    assert se[("b", "test")] == pytest.approx(math.sqrt(0.3 * 0.7 / 200), abs=1e-15)
    assert se[("b", "cv")] == 0.02  # the folds' SE, as evaluate wrote it
    figure = plots.rate_figure(errors, "error", title="t", ylabel="y")
    from matplotlib.collections import PolyCollection

    bands = [c for c in figure.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 4  # train, val, test, cv: one band each

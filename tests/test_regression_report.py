"""A regression sweep's report: every page, plot, metric file and MLflow view names RMSE in
the target's units and the decision's MSE, never classification's error or classes; and
classification's names stay as they were. Inputs written by hand (tests.support.
regression_report), the real report stage in process."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from pipeline import refine, report
from pipeline.config import load_config, resolve_entries
from pipeline.core import contracts
from pipeline.core.task import CLASSIFICATION_TASK, REGRESSION_TASK
from pipeline.reporting import data_note, readers, table, trivial
from pipeline.tracking import views
from tests.support.regression_report import TARGET, TARGET_MEAN, TARGET_STD, read_json
from tests.support.regression_report import regression_lab as make_lab

CLASSIFICATION_WORDS = ("error (1 - accuracy)", "class", "majority", "Wilson", "McNemar")


@pytest.fixture
def lab(tmp_path: Path):
    found = make_lab(tmp_path / "lab")
    root = found.root
    report.report(
        root / "params.yaml", root / "metrics", root / "evaluation", root / "models",
        root / "data/prepared", root / "reports", root / "refit",
    )  # fmt: skip
    return found


def test_the_pages_name_rmse_in_units_and_the_decisions_mse(lab):
    reports = lab.path("reports")
    sweep_md = (reports / "sweep.md").read_text()
    choosing_md = (reports / "choosing.md").read_text()
    for page in (sweep_md, choosing_md):
        assert not [w for w in CLASSIFICATION_WORDS if w in page], page
        # The data note: how the target was scaled, first on each page.
        assert f"mean {TARGET_MEAN:g} and standard deviation {TARGET_STD:g}" in page
    best_val = lab.figures("l2_1e_2", "val")
    assert "Best on validation MSE: **l2_1e_2**" in sweep_md
    assert f"val RMSE {best_val['val_rmse']:.4g}" in sweep_md
    assert "| baseline: training mean " in sweep_md
    assert "| l2_1 (collapsed: predicts nearly one value) |" in sweep_md
    assert "MLPRegressor" in sweep_md and "| l2_1e_2 | 0.01 | 0.16 | 2 | 0.02 |" in sweep_md
    assert "The decision is made on MSE, the mean of the per-row squared errors" in choosing_md
    assert f"**Chosen: l2_1e_2**, validation MSE {best_val['val_mse']:.4g} ± " in choosing_md
    assert f"(RMSE {best_val['val_rmse']:.4g})" in choosing_md
    test_rmse = lab.figures("l2_1e_2", "test")["test_rmse"]
    assert f"Its test RMSE is {test_rmse:.4g}, 95% interval [" in choosing_md
    assert "RMSE difference 95%" in choosing_md
    assert "L2 makes no measurable difference here" in choosing_md


def test_the_table_and_the_metric_files_carry_the_tasks_figures(lab):
    reports = lab.path("reports")
    sweep = pd.read_csv(reports / "sweep.csv")
    assert list(sweep["entry"]) == ["l2_1e_2", "l2_0", "l2_1"]  # by validation MSE
    assert not [c for c in sweep.columns if "error" in c or "xent" in c or "class" in c]
    assert {"train_rmse", "val_rmse", "test_rmse", "val_mse", "val_mse_se", "val_mae",
            "test_r2", "gen_gap", "l2_penalty", "sum_sq_weights", "baseline_prediction",
            "baseline_val_rmse"} <= set(sweep.columns)  # fmt: skip
    said = contracts.read_summary(reports)
    assert (said.task, said.figure, said.test_figure) == ("regression", "val_mse", "test_rmse")
    decision = contracts.read_decision(lab.path("refit"))
    chosen = decision["choice"]["chosen"]
    assert sweep.loc[0, "val_mse_se"] == pytest.approx(chosen["se"], rel=1e-4)
    best = read_json(reports / "best.json")
    assert best["best_entry"] == "l2_1e_2"
    assert best["best_val_rmse"] == contracts.rounded(lab.figures("l2_1e_2", "val")["val_rmse"])
    assert best["chosen_figure"] == contracts.rounded(chosen["value"])
    assert not [k for k in best if "error" in k]


def test_the_plots_hold_rmse_with_the_delta_method_se(lab):
    plots_dir = lab.path("reports/plots")
    rates = pd.read_csv(plots_dir / "error_vs_rate.csv")
    val = rates[rates["series"] == "val"].set_index("entry")
    chosen = contracts.read_decision(lab.path("refit"))["choice"]["chosen"]
    rmse = math.sqrt(chosen["value"])
    assert val.at["l2_1e_2", "error"] == pytest.approx(rmse, rel=1e-4)
    # SE(RMSE) = SE(MSE) / (2 RMSE): the decision's uncertainty on the plot's scale.
    assert val.at["l2_1e_2", "error_se"] == pytest.approx(chosen["se"] / (2 * rmse), rel=1e-4)
    assert set(rates["series"]) == {"train", "val", "test", "training mean"}
    curves = pd.read_csv(plots_dir / "learning_curves_error.csv")
    assert set(curves["series"]) == {"train RMSE", "val RMSE"}


def test_the_png_axes_say_rmse_in_the_targets_units(lab):
    config = load_config(lab.path("params.yaml"))
    entries = resolve_entries(config, contracts.read_sweep_record(lab.path("models")).layers)
    sweep = table.sweep_table(entries, lab.path("metrics"), lab.path("evaluation"),
                              REGRESSION_TASK)  # fmt: skip
    names = list(sweep["entry"])
    _, figures = report.build_plots(
        sweep, {e.name: e.uniform_rate for e in entries},
        readers.read_histories(lab.path("models"), names),
        readers.read_kernels(lab.path("evaluation"), names),
        task=REGRESSION_TASK, target=TARGET,
    )  # fmt: skip
    (rate_axes,) = figures["error_vs_rate"].axes
    assert rate_axes.get_ylabel() == f"RMSE ({TARGET}, target units)"
    curves, losses = figures["learning_curves"].axes[:2]
    assert curves.get_ylabel() == f"RMSE ({TARGET}, target units)"
    assert losses.get_ylabel() == "MSE (standardised target) / penalty"


def test_refine_and_record_learn_the_task_without_tensorflow(lab):
    points, decision, names = refine.read_points(
        lab.path("params.yaml"), lab.path("metrics"), lab.path("evaluation"),
        lab.path("data/prepared"), lab.path("refit"),
    )  # fmt: skip
    assert decision.chosen.name == "l2_1e_2" and decision.figure == "val_mse"
    by_entry = {p.entry: p for p in points}
    val = lab.figures("l2_1e_2", "val")["val_rmse"]
    assert by_entry["l2_1e_2"].val == pytest.approx(val, rel=1e-4)  # RMSE on the rate axis
    assert sorted(names) == ["l2_0", "l2_1", "l2_1e_2"]
    from pipeline.record import read_results

    found = read_results(lab.path("models"), lab.path("metrics"), lab.path("evaluation"),
                         lab.path("reports"))  # fmt: skip
    assert found.task is REGRESSION_TASK and "best_val_rmse" in found.best


def test_the_mlflow_views_sort_and_chart_the_tasks_validation_figure():
    table_view = views.sweep_view_state("p", ["val_rmse", "test_rmse"], REGRESSION_TASK)
    assert table_view["orderByKey"] == "metrics.`val_rmse`"
    (chart,) = views.sweep_chart_state("p", REGRESSION_TASK)["compareRunCharts"]
    assert chart["yaxis"] == {"key": "val_rmse", "type": "METRIC"}
    assert chart["displayName"] == "validation RMSE vs L2 rate"
    said = views.description("e", "v", "1", "p", [], REGRESSION_TASK)
    assert "[Chart: validation RMSE vs L2 rate]" in said and "error" not in said
    # Classification's views as they were (tests/test_ui.py opens them in a browser).
    (chart,) = views.sweep_chart_state("p", task=CLASSIFICATION_TASK)["compareRunCharts"]
    assert (chart["uuid"], chart["yaxis"]["key"]) == ("val-error-vs-l2-rate", "val_error")
    assert (
        views.sweep_view_state("p", ["val_error"], task=CLASSIFICATION_TASK)["orderByKey"]
        == "metrics.`val_error`"
    )


def test_decision_json_names_a_regression_only(tmp_path: Path):
    contracts.write_summary(tmp_path, contracts.DecisionSummary("a", None))
    assert "task" not in read_json(tmp_path / contracts.SUMMARY_FILE)
    contracts.write_summary(tmp_path, contracts.DecisionSummary("a", None, task="regression"))
    assert contracts.read_summary(tmp_path).task == "regression"


def test_classification_keeps_its_names():
    assert trivial.baseline_columns(CLASSIFICATION_TASK) == trivial.BASELINE_COLUMNS
    assert table.columns_of(CLASSIFICATION_TASK) == table.COLUMNS
    assert trivial.baseline_columns(REGRESSION_TASK) == (
        "baseline_prediction", "baseline_train_rmse", "baseline_val_rmse", "baseline_test_rmse",
        "baseline_cv_mse",
    )  # fmt: skip


def test_the_data_note_of_a_regression_says_how_the_target_was_scaled(tmp_path: Path):
    lab = make_lab(tmp_path / "lab")
    meta = contracts.read_meta(lab.path("data/prepared"))
    config = load_config(lab.path("params.yaml"))
    note = data_note.training_data_note(meta, config.data)
    assert note.startswith("The target was standardised for training with the training rows'")
    assert "label" not in note
    dropped = contracts.PreparedMeta(**{**meta.__dict__, "incomplete_rows_dropped": 3,
                                        "rows_read": 343})  # fmt: skip
    both = data_note.training_data_note(dropped, config.data)
    assert both.startswith("Data changed: 3 of 343 rows dropped") and note in both


def test_folds_and_seeds_rank_on_the_mean_cv_mse_and_answer_with_the_refits_rmse(tmp_path):
    lab = make_lab(tmp_path / "lab", folds=2, seeds=(43,))
    root = lab.root
    report.report(
        root / "params.yaml", root / "metrics", root / "evaluation", root / "models",
        root / "data/prepared", root / "reports", root / "refit",
    )  # fmt: skip
    sweep = pd.read_csv(root / "reports/sweep.csv")
    assert list(sweep["cv_mse_mean"]) == sorted(sweep["cv_mse_mean"])
    assert "val_mse_se" not in sweep.columns  # with folds the SE is the folds' (cv_mse_se)
    sweep_md = (root / "reports/sweep.md").read_text()
    assert "Ranked on mean cross-validation MSE (" in sweep_md
    assert " Mean over 2 seeds: val RMSE " in sweep_md
    choosing_md = (root / "reports/choosing.md").read_text()
    assert "mean CV MSE " in choosing_md and "**Refit** on all 260 training and validation" \
        " rows: test RMSE " in choosing_md
    assert not [w for w in CLASSIFICATION_WORDS if w in choosing_md + sweep_md]
    rates = pd.read_csv(root / "reports/plots/error_vs_rate.csv")
    cv = rates[rates["series"] == "val"]
    assert cv["error_std"].notna().all()  # the spread over seeds
    best = read_json(root / "reports/best.json")
    chosen = contracts.read_decision(root / "refit")
    assert best["answer"] == contracts.rounded(chosen["refit"]["test_value"])

"""The trivial baseline: the majority class's error, computed here independently, and where
the report shows it (sweep.md, sweep.csv, best.json, choosing.md, the rate plot)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.datasets.baseline import (
    CLASSIFICATION,
    REGRESSION,
    fold_baseline,
    majority_class,
    trivial_baseline,
)
from pipeline.reporting import plots, trivial
from pipeline.reporting.table import _cell
from tests.support.project import Project


def test_the_majority_class_breaks_ties_by_the_lowest_class_index():
    assert majority_class(np.array([2, 2, 1, 1, 0])) == 1  # 1 and 2 tie: the lower wins
    assert majority_class(np.array([3, 3, 3, 0])) == 3
    with pytest.raises(ValueError):
        majority_class(np.array([], dtype=np.int64))


def test_the_baseline_error_is_the_share_of_rows_of_another_class():
    train = np.array([0, 1, 1, 1, 2, 2])
    val = np.array([1, 1, 0, 2, 2])  # 2 of 5 are class 1
    test = np.array([0, 0, 0, 1])  # 1 of 4
    found = trivial_baseline(CLASSIFICATION, train, {"train": train, "val": val, "test": test})
    counted = {name: sum(y != 1) / len(y) for name, y in [("val", val), ("test", test)]}
    assert found == {
        "predictor": "majority class",
        "prediction": 1,
        "train_error": 0.5,
        "val_error": counted["val"],
        "test_error": counted["test"],
    }
    assert counted == {"val": 0.6, "test": 0.75}
    with pytest.raises(ValueError, match="no trivial predictor for task 'ranking'"):
        trivial_baseline("ranking", train, {})


def test_the_regression_baseline_predicts_the_training_mean_scored_by_rmse():
    train = np.array([1.0, 2.0, 6.0])  # mean 3
    val = np.array([3.0, 5.0])  # squared deviations 0, 4: MSE 2
    test = np.array([0.0, 3.0, 6.0, 3.0])  # 9, 0, 9, 0: MSE 4.5
    found = trivial_baseline(REGRESSION, train, {"train": train, "val": val, "test": test})
    assert found == {
        "predictor": "training mean",
        "prediction": 3.0,
        "train_rmse": math.sqrt((4 + 1 + 9) / 3),
        "val_rmse": math.sqrt(2.0),
        "test_rmse": math.sqrt(4.5),
    }
    with pytest.raises(ValueError, match="no training rows"):
        trivial_baseline(REGRESSION, np.array([]), {})


def test_the_fold_baseline_scores_each_fold_by_the_choosing_figure():
    folds = [(np.array([0.0, 2.0]), np.array([4.0])), (np.array([4.0, 2.0]), np.array([0.0, 6.0]))]
    found = fold_baseline(REGRESSION, folds)
    # fold 0 predicts 1: MSE 9; fold 1 predicts 3: MSE (9 + 9) / 2 = 9
    assert found == {
        "folds": [
            {"fold": 0, "prediction": 1.0, "mse": 9.0},
            {"fold": 1, "prediction": 3.0, "mse": 9.0},
        ],
        "cv_mse_mean": 9.0,
    }
    labels = [(np.array([1, 1, 0]), np.array([1, 0])), (np.array([0, 0, 1]), np.array([1, 1]))]
    assert fold_baseline(CLASSIFICATION, labels) == {
        "folds": [
            {"fold": 0, "prediction": 1, "error": 0.5},
            {"fold": 1, "prediction": 0, "error": 1.0},
        ],
        "cv_error_mean": 0.75,
    }


def _ranked(baseline_val: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entry": ["a", "b", "c"],
            "val_error": [0.1, 0.5, 0.9],
            "train_error": [0.0, 0.4, 0.88],
            "test_error": [0.12, 0.5, 0.9],
            "baseline_class": ["3", "3", "7"],
            "baseline_train_error": [0.88, 0.88, 0.85],
            "baseline_val_error": baseline_val,
            "baseline_test_error": [0.9, 0.9, 0.7],
        }
    )


def test_the_baseline_row_sits_above_the_first_entry_no_better_than_it():
    table = _ranked([0.9, 0.9, 0.5])  # c trained on a set whose majority class is 7
    columns = ["entry", "train_error", "val_error", "test_error"]
    rows = [[e, "", "", ""] for e in table["entry"]]
    placed = trivial.with_baseline_rows(table, columns, rows, _cell, task=CLASSIFICATION_TASK)
    assert [r[0] for r in placed] == [
        "a",
        "baseline: majority class '7' (for c)",  # 0.5: b does no better
        "b",
        "baseline: majority class '3' (for a, b)",  # 0.9: c does no better
        "c",
    ]
    assert placed[3][1:] == ["0.88", "0.9", "0.9"]


def test_an_entry_predicting_one_class_on_every_validation_row_is_collapsed(tmp_path):
    """Decided from evaluate's per-row predictions, not from the error: `even` has the error
    `one` has, but predicts two classes."""
    from pipeline.core import contracts
    from pipeline.core.errors import DataError

    labels = np.array([0, 1, 1, 2])
    predicted = {"one": np.array([1, 1, 1, 1]), "even": np.array([1, 0, 1, 0])}
    np.savez(tmp_path / contracts.HELD_OUT_FILE, labels=labels, **predicted)
    baseline = {"prediction": 1, "train_error": 0.5, "val_error": 0.5, "test_error": 0.6}
    for entry in [*predicted, "boom"]:  # boom diverged: no predictions
        (tmp_path / f"{entry}.json").write_text(json.dumps({"baseline": baseline}))
    table = pd.DataFrame({"entry": ["one", "even", "boom"]})
    found = trivial.with_baseline(table, tmp_path, ["zero", "one", "two"], task=CLASSIFICATION_TASK)
    assert list(found["collapsed"]) == [True, False, False]
    assert list(found["baseline_class"]) == ["one"] * 3
    (tmp_path / "boom.json").write_text("{}")
    with pytest.raises(DataError, match=r"boom\.json: no baseline; run `dvc repro -f evaluate`"):
        trivial.with_baseline(table, tmp_path, ["zero", "one", "two"], task=CLASSIFICATION_TASK)


def test_the_rate_plot_draws_the_majority_class_as_a_horizontal_line():
    table = pd.DataFrame(
        {"entry": ["a", "b"], "train_error": [0.0, 0.5], "val_error": [0.1, 0.2],
         "test_error": [0.1, 0.3]}
    )  # fmt: skip
    rows = plots.by_rate(table, {"a": 0.0, "b": 0.01})
    errors = plots.error_by_rate(rows, None, baseline=0.9, task=CLASSIFICATION_TASK)
    line = errors[errors["series"] == plots.BASELINE_SERIES]
    assert list(line["entry"]) == ["a", "b"] and set(line["error"]) == {0.9}
    figure = plots.rate_figure(errors, "error", title="t", ylabel="y")
    (axes,) = figure.axes
    (reference,) = [ln for ln in axes.lines if ln.get_label().startswith("majority class")]
    assert set(reference.get_ydata()) == {0.9}
    assert reference.get_label() == "majority class (0.900)"


@pytest.mark.slow
def test_the_reports_baseline_is_the_majority_class_error_of_the_prepared_data(
    reproduced: Project,
):
    root = reproduced.root
    prepared = root / "data" / "prepared"
    labels = {
        s: pd.read_parquet(prepared / f"{s}.parquet")["label"] for s in ("train", "val", "test")
    }
    counts = labels["train"].value_counts()
    majority = min(counts[counts == counts.max()].index)  # ties: the lowest class index
    expected = {s: float(np.mean(labels[s] != majority)) for s in ("val", "test")}
    class_names = json.loads((prepared / "meta.json").read_text())["class_names"]

    best = json.loads((root / "reports" / "best.json").read_text())
    assert best["baseline_val"] == pytest.approx(expected["val"], abs=5e-6)
    assert best["baseline_test"] == pytest.approx(expected["test"], abs=5e-6)
    sweep_md = (root / "reports" / "sweep.md").read_text()
    (row,) = [ln for ln in sweep_md.splitlines() if ln.startswith("| baseline: majority class")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == f"baseline: majority class '{class_names[majority]}'"
    assert [float(c) for c in cells[4:6]] == pytest.approx(
        [expected["val"], expected["test"]], abs=5e-5
    )
    choosing_md = (root / "reports" / "choosing.md").read_text()
    assert f"validation error {expected['val']:.3f} and test error {expected['test']:.3f}" in (
        choosing_md
    )

    # Collapsed: from the per-row predictions, the same entries as in sweep.csv and sweep.md.
    table = pd.read_csv(root / "reports" / "sweep.csv")
    with np.load(root / "evaluation" / "held_out.npz") as held_out:
        one_class = {e for e in table["entry"] if len(np.unique(held_out[e])) == 1}
    assert set(table.loc[table["collapsed"], "entry"]) == one_class
    for entry in table["entry"]:
        marked = f"| {entry} ({trivial.COLLAPSED}) |" in sweep_md
        assert marked == (entry in one_class), entry


def test_each_folds_baseline_is_its_training_rows_majority_on_its_held_out_rows(params_file):
    """Per fold the majority class of the rows its models train on (label noise included),
    scored on the held-out fold; the CV figure is their mean over folds, as the entries'."""
    from collections import Counter

    from pipeline.config import load_config
    from pipeline.core.contracts import PreparedMeta
    from pipeline.datasets import folds
    from pipeline.datasets.prepared import Split
    from pipeline.evaluate import CrossValidation

    config = load_config(params_file)
    labels = np.repeat([0, 1, 2], [30, 12, 18])
    pool = Split(np.zeros((len(labels), 2), np.float32), labels)
    meta = PreparedMeta("hand-made", ("a", "b", "c"), 2, {}, 0, (2,))
    found = CrossValidation(pool, 3, meta, config).baseline()
    errors = []
    for fold, counted in enumerate(found["folds"]):
        train, held_out, _ = folds.fold_sets(
            pool, 3, fold, 3, config.data.effective_label_noise, config.base.seed
        )
        counts = Counter(train.labels.tolist())
        majority = min(c for c in counts if counts[c] == max(counts.values()))
        errors.append(sum(held_out.labels != majority) / len(held_out.labels))
        assert counted == {"fold": fold, "prediction": majority, "error": errors[-1]}
    assert found["cv_error_mean"] == pytest.approx(np.mean(errors), abs=1e-15)


def test_the_layer_heatmap_names_the_majority_class_error():
    from pipeline.reporting.choosing_figures import layer_heatmap_figure

    grid = pd.DataFrame([[0.3, 0.2]], index=["all"], columns=[0.0, 0.01])
    (axes, colorbar) = layer_heatmap_figure(grid, baseline=0.9, task=CLASSIFICATION_TASK).axes
    assert axes.get_title().endswith("(majority class: 0.900, above the scale)")
    (axes, colorbar) = layer_heatmap_figure(grid, baseline=0.25, task=CLASSIFICATION_TASK).axes
    assert axes.get_title().endswith("(majority class: 0.250, red line on the scale)")
    assert [list(line.get_ydata()) for line in colorbar.lines] == [[0.25, 0.25]]


def test_the_data_size_curves_draw_each_training_sets_majority_class():
    """Every size is its own training set: its majority class's test error, not one line."""
    from pipeline.reporting.choosing_figures import size_figure

    curves = pd.DataFrame(
        {
            "noise": [0.2] * 4,
            "train_size": [100, 100, 200, 200],
            "series": ["rate 0", "best rate"] * 2,
            "l2_rate": [0.0, 0.01, 0.0, 0.01],
            "entry": ["n100_0", "n100_1e_2", "n200_0", "n200_1e_2"],
            "val_error": [0.3, 0.2, 0.25, 0.15],
            "test_error": [0.3, 0.2, 0.25, 0.15],
            "test_error_std": [0.0] * 4,
        }
    )
    baselines = {"n100_0": 0.9, "n100_1e_2": 0.9, "n200_0": 0.8, "n200_1e_2": 0.8}
    (axes,) = size_figure(curves, baselines, task=CLASSIFICATION_TASK).axes
    (line,) = [ln for ln in axes.lines if ln.get_label().startswith("majority class")]
    assert list(line.get_xdata()) == [100, 200] and list(line.get_ydata()) == [0.9, 0.8]

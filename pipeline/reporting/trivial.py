"""The trivial baseline beside the sweep's figures: each entry's (evaluate computed it for the
entry's training set, pipeline/datasets/baseline.py), the entries that collapsed to it, and
the rows and sentences the pages show them with.

Classification's baseline always predicts the training rows' majority class; regression's
always predicts the training rows' mean target (`baseline`'s `predictor`, "training mean").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.entries import EntrySpec
from pipeline.core import contracts
from pipeline.core.errors import DataError
from pipeline.core.task import Task

# The trivial baseline of each entry's training set (evaluate: pipeline/datasets/baseline.py),
# sweep.csv's last columns; sweep.md shows it as a row of its own instead.
BASELINE_COLUMNS = ("baseline_class", "baseline_train_error", "baseline_val_error",
                    "baseline_test_error", "baseline_cv_error")  # fmt: skip
COLLAPSED = "collapsed: predicts one class"
# A regression model "collapsed" when its validation predictions spread less than this share
# of the validation targets' standard deviation: under a strong penalty every kernel shrinks
# toward 0 and the output is its bias, the one value MSE likes best, within float noise.
COLLAPSED_SPREAD = 0.01
COLLAPSED_REGRESSION = "collapsed: predicts nearly one value"


def baseline_columns(task: Task) -> tuple[str, ...]:
    """(what the baseline predicts, its figure on train, val, test, its mean CV figure)."""
    if not task.is_regression:
        return BASELINE_COLUMNS
    figures = tuple(f"baseline_{split}_{task.figure}" for split in ("train", "val", "test"))
    return ("baseline_prediction", *figures, f"baseline_cv_{task.choice}")


def collapsed_words(task: Task) -> str:
    return COLLAPSED_REGRESSION if task.is_regression else COLLAPSED


def with_baseline(
    table: pd.DataFrame,
    details_dir: Path,
    class_names: Sequence[str],
    task: Task,
) -> pd.DataFrame:
    """`table` with each entry's trivial baseline (with folds its mean CV figure over folds)
    and `collapsed`: its model predicts one class (regression: nearly one value) for every
    validation row (evaluate's per-row predictions; a diverged entry has none)."""
    columns = baseline_columns(task)
    rows = []
    for entry in table["entry"]:
        path = details_dir / f"{entry}.json"
        found = contracts.read_stage_json(path, "evaluate").get("baseline")
        if found is None:
            raise DataError(f"{path}: no baseline; run `dvc repro -f evaluate`")
        try:
            figures = {
                column: found[task.of(split)]
                for column, split in zip(columns[1:4], ("train", "val", "test"), strict=True)
            }
        except KeyError as missing:
            raise DataError(
                f"{path}: baseline without {missing}; run `dvc repro -f evaluate`"
            ) from None
        if task.cv_mean in found:
            figures[columns[4]] = found[task.cv_mean]
        predicted = found["prediction"] if task.is_regression else class_names[found["prediction"]]
        rows.append({columns[0]: predicted, **figures})
    held_out = details_dir / contracts.HELD_OUT_FILE
    if not held_out.is_file():
        raise DataError(f"{held_out}: missing; run `dvc repro evaluate`")
    with np.load(held_out) as archive:
        labels = archive[contracts.HELD_OUT_LABELS]
        one_value = {e for e in archive.files if e != contracts.HELD_OUT_LABELS
                     and _collapsed(archive[e], labels, task)}  # fmt: skip
    added = pd.DataFrame(rows, index=table.index)
    added["collapsed"] = table["entry"].isin(one_value)
    return pd.concat([table, added], axis=1)


def _collapsed(predicted: np.ndarray, labels: np.ndarray, task: Task) -> bool:
    if not task.is_regression:
        return len(np.unique(predicted)) == 1
    return float(np.std(predicted)) < COLLAPSED_SPREAD * float(np.std(labels))


def _prediction_words(task: Task, prediction) -> str:
    if task.is_regression:
        return f"training mean {prediction:.4g}"
    return f"majority class '{prediction}'"


def baseline_sentence(table: pd.DataFrame, task: Task) -> str:
    """What the baseline rows of sweep.md are, in one sentence."""
    predictions = table[baseline_columns(task)[0]].unique()
    if task.is_regression:
        which = (
            f"{predictions[0]:.4g}" if len(predictions) == 1 else "of each entry's training set"
        )
        return (
            f" Baseline row: always predicting the training rows' mean target ({which}); "
            "entries at or above its RMSE learned nothing the mean does not know."
        )
    which = f"'{predictions[0]}'" if len(predictions) == 1 else "of each entry's training set"
    return (
        f" Baseline row: always predicting the training rows' majority class ({which}; a tie "
        "goes to the lowest class index, labels as trained on); entries at or below it "
        "do no better than that."
    )


def _rank_key(table: pd.DataFrame, task: Task) -> tuple[str, str]:
    """(the entries' column `rank` sorts on first, or one in the same order, the baseline's
    column of that figure)."""
    columns = baseline_columns(task)
    # Without the baseline's own CV figure (evaluate gives it with folds) it is placed by
    # validation.
    if task.cv_mean in table.columns and columns[4] in table.columns:
        return task.cv_mean, columns[4]
    # Regression ranks on MSE; RMSE is its square root, in the same order, and the baseline
    # has RMSE.
    val = task.val_figure
    return (f"{val}_mean" if f"{val}_mean" in table.columns else val), columns[2]


def with_baseline_rows(
    table: pd.DataFrame,
    columns: list[str],
    rows: list,
    cell: Callable[[object], str],
    task: Task,
) -> list:
    """`rows` (one per entry, ranked) with a baseline row per baseline prediction, each
    placed above the first entry that does no better."""
    entry_key, baseline_key = _rank_key(table, task)
    label_column, train, val, test, cv = baseline_columns(task)
    rows = list(rows)
    groups = sorted(table.groupby(label_column), key=lambda g: g[1][baseline_key].iloc[0])
    for position, (name, group) in enumerate(groups):
        first = group.iloc[0]
        label = f"baseline: {_prediction_words(task, name)}"
        if len(groups) > 1:  # sweep.csv's baseline column names every entry's
            names = list(group["entry"])
            more = f" and {len(names) - 4} more" if len(names) > 4 else ""
            label += f" (for {', '.join(names[:4])}{more})"
        same_train = group[train].nunique() == 1
        figures = {
            "entry": label,
            task.train_figure: cell(first[train]) if same_train else "",
            task.val_figure: cell(first[val]),
            task.test_figure: cell(first[test]),
            f"{task.val_figure}_mean": cell(first[val]),
            f"{task.test_figure}_mean": cell(first[test]),
            task.cv_mean: cell(first.get(cv, math.nan)),
        }
        if task.is_regression:  # the mean's MSE: its RMSE squared
            figures[task.choosing_figure] = cell(float(first[val]) ** 2)
            figures[f"{task.choosing_figure}_mean"] = figures[task.choosing_figure]
        if same_train:
            figures[f"{task.train_figure}_mean"] = figures[task.train_figure]
            gap = first[test] - first[train]
            figures["gen_gap"] = cell(float(gap))
        cells = [figures.get(column, "") for column in columns]
        key = first[baseline_key]
        worse = [i for i, k in enumerate(table[entry_key]) if not k < key]  # NaN: diverged
        at = (worse[0] if worse else len(table)) + position
        rows.insert(at, cells)
    return rows


def reference_baseline(
    sweep: pd.DataFrame, by_name: dict[str, EntrySpec], task: Task
) -> pd.Series:
    """The trivial baseline of data's training split, which every entry on the rate axes and
    in the layer grid trains on (the first entry's when every entry has its own set)."""
    own = sweep[[not by_name[e].uses_pool for e in sweep["entry"]]]
    return (own if len(own) else sweep).iloc[0][list(baseline_columns(task)[:4])]


def on_the_axes(
    sweep: pd.DataFrame, reference: pd.Series, cv: bool, task: Task
) -> float | None:
    """The baseline on the figure the rate axes and the layer grid show: its validation
    figure, with folds its mean CV error (regression: the root of its mean CV MSE, as
    choosing.points places the entries); None when evaluate gave it no CV figure."""
    columns = baseline_columns(task)
    if not cv:
        return float(reference[columns[2]])
    if columns[4] not in sweep.columns:
        return None
    return float(sweep[columns[4]].iloc[0]) ** (0.5 if task.is_regression else 1)


def baseline_paragraph(
    sweep: pd.DataFrame, reference: pd.Series, cv: bool, task: Task
) -> str:
    """choosing.md's line on the trivial baseline and the entries that collapsed to it."""
    label, _, val, test, cv_column = baseline_columns(task)
    if task.is_regression:
        word = task.word
        text = (
            f"Trivial baseline: always predicting the training rows' mean target "
            f"({reference[label]:.4g}) gives validation {word} {reference[val]:.4g} "
            f"(MSE {reference[val] ** 2:.4g}) and test {word} {reference[test]:.4g}"
        )
        if cv and cv_column in sweep.columns:
            text += f", mean CV {task.choice_word} {sweep[cv_column].iloc[0]:.4g}"
    else:
        text = (
            f"Trivial baseline: always predicting the training rows' majority class "
            f"('{reference[label]}'; a tie goes to the lowest class index) gives "
            f"validation error {reference[val]:.3f} and test error {reference[test]:.3f}"
        )
        if cv:
            text += f", mean CV error {sweep[cv_column].iloc[0]:.3f}"
    collapsed = list(sweep.loc[sweep["collapsed"], "entry"])
    if collapsed:
        text += (
            f". {collapsed_words(task).capitalize()} on every validation row: "
            f"{', '.join(collapsed)}"
        )
    return text + "."

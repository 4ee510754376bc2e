"""The trivial baseline beside the sweep's errors: each entry's (evaluate computed it for the
entry's training set, pipeline/datasets/baseline.py), the entries that collapsed to one
class, and the rows and sentences the pages show them with."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.entries import EntrySpec
from pipeline.core import contracts
from pipeline.core.errors import DataError

# The trivial baseline of each entry's training set (evaluate: pipeline/datasets/baseline.py),
# sweep.csv's last columns; sweep.md shows it as a row of its own instead.
BASELINE_COLUMNS = ("baseline_class", "baseline_train_error", "baseline_val_error",
                    "baseline_test_error", "baseline_cv_error")  # fmt: skip
COLLAPSED = "collapsed: predicts one class"


def with_baseline(
    table: pd.DataFrame, details_dir: Path, class_names: Sequence[str]
) -> pd.DataFrame:
    """`table` with each entry's trivial baseline (`baseline_cv_error` with folds: its mean
    over folds) and `collapsed`: its model predicts one class for every validation row
    (evaluate's per-row predictions; a diverged entry has none)."""
    rows = []
    for entry in table["entry"]:
        path = details_dir / f"{entry}.json"
        found = contracts.read_stage_json(path, "evaluate").get("baseline")
        if found is None:
            raise DataError(f"{path}: no baseline; run `dvc repro -f evaluate`")
        figures = {f"baseline_{s}_error": found[f"{s}_error"] for s in ("train", "val", "test")}
        if "cv_error_mean" in found:
            figures["baseline_cv_error"] = found["cv_error_mean"]
        rows.append({"baseline_class": class_names[found["prediction"]], **figures})
    held_out = details_dir / contracts.HELD_OUT_FILE
    if not held_out.is_file():
        raise DataError(f"{held_out}: missing; run `dvc repro evaluate`")
    with np.load(held_out) as archive:
        one_class = {e for e in archive.files if e != contracts.HELD_OUT_LABELS
                     and len(np.unique(archive[e])) == 1}  # fmt: skip
    added = pd.DataFrame(rows, index=table.index)
    added["collapsed"] = table["entry"].isin(one_class)
    return pd.concat([table, added], axis=1)


def baseline_sentence(table: pd.DataFrame) -> str:
    """What the baseline rows of sweep.md are, in one sentence."""
    classes = table["baseline_class"].unique()
    which = f"'{classes[0]}'" if len(classes) == 1 else "of each entry's training set"
    return (
        f" Baseline row: always predicting the training rows' majority class ({which}; a tie "
        "goes to the lowest class index, labels as trained on); entries at or below it "
        "do no better than that."
    )


def _rank_key(table: pd.DataFrame) -> tuple[str, str]:
    """(the entries' column `rank` sorts on first, the baseline's column of that figure)."""
    if "cv_error_mean" in table.columns:
        return "cv_error_mean", "baseline_cv_error"
    return ("val_error_mean" if "val_error_mean" in table.columns else "val_error",
            "baseline_val_error")  # fmt: skip


def with_baseline_rows(
    table: pd.DataFrame, columns: list[str], rows: list, cell: Callable[[object], str]
) -> list:
    """`rows` (one per entry, ranked) with a baseline row per majority class, each placed
    above the first entry that does no better."""
    entry_key, baseline_key = _rank_key(table)
    rows = list(rows)
    groups = sorted(table.groupby("baseline_class"), key=lambda g: g[1][baseline_key].iloc[0])
    for position, (name, group) in enumerate(groups):
        first = group.iloc[0]
        label = f"baseline: majority class '{name}'"
        if len(groups) > 1:  # sweep.csv's baseline_class names every entry's
            names = list(group["entry"])
            more = f" and {len(names) - 4} more" if len(names) > 4 else ""
            label += f" (for {', '.join(names[:4])}{more})"
        same_train = group["baseline_train_error"].nunique() == 1
        figures = {
            "entry": label,
            "train_error": cell(first["baseline_train_error"]) if same_train else "",
            "val_error": cell(first["baseline_val_error"]),
            "test_error": cell(first["baseline_test_error"]),
            "val_error_mean": cell(first["baseline_val_error"]),
            "test_error_mean": cell(first["baseline_test_error"]),
            "cv_error_mean": cell(first.get("baseline_cv_error", math.nan)),
        }
        if same_train:
            figures["train_error_mean"] = figures["train_error"]
            gap = first["baseline_test_error"] - first["baseline_train_error"]
            figures["gen_gap"] = cell(float(gap))
        cells = [figures.get(column, "") for column in columns]
        key = first[baseline_key]
        worse = [i for i, k in enumerate(table[entry_key]) if not k < key]  # NaN: diverged
        at = (worse[0] if worse else len(table)) + position
        rows.insert(at, cells)
    return rows


def reference_baseline(sweep: pd.DataFrame, by_name: dict[str, EntrySpec]) -> pd.Series:
    """The trivial baseline of data's training split, which every entry on the rate axes and
    in the layer grid trains on (the first entry's when every entry has its own set)."""
    own = sweep[[not by_name[e].uses_pool for e in sweep["entry"]]]
    return (own if len(own) else sweep).iloc[0][list(BASELINE_COLUMNS[:4])]


def baseline_paragraph(sweep: pd.DataFrame, reference: pd.Series, cv: bool) -> str:
    """choosing.md's line on the trivial baseline and the entries that collapsed to it."""
    text = (
        f"Trivial baseline: always predicting the training rows' majority class "
        f"('{reference['baseline_class']}'; a tie goes to the lowest class index) gives "
        f"validation error {reference['baseline_val_error']:.3f} and test error "
        f"{reference['baseline_test_error']:.3f}"
    )
    if cv:
        text += f", mean CV error {sweep['baseline_cv_error'].iloc[0]:.3f}"
    collapsed = list(sweep.loc[sweep["collapsed"], "entry"])
    if collapsed:
        text += f". {COLLAPSED.capitalize()} on every validation row: {', '.join(collapsed)}"
    return text + "."

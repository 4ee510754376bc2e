"""The sweep as one table: read from evaluate's files, ranked on validation only, as Markdown.

The best entry is the one with the lowest validation figure the decision ranks on (the task's:
error for classification, MSE for regression; its mean over seeds with `base.repeat_seeds`);
ties are broken by the task's tie-break figure (validation cross-entropy, or MAE), never by
name, and the report says which entries the judge cannot tell apart from the chosen one. The
test figure is shown, never used to choose.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from pipeline.choosing import Decision
from pipeline.config.entries import EntrySpec
from pipeline.core import contracts
from pipeline.core.task import Task
from pipeline.reporting import fine_tuning as fine_tuning_words
from pipeline.reporting import markdown, trivial

COLUMNS = [
    "entry",
    "l2_rates",
    "weight_decay",
    "train_error",
    "val_error",
    "test_error",
    "gen_gap",
    "val_xent",
    "train_xent",
    "l2_penalty",
    "sum_sq_weights",
    "near_linear_share",
    "saturated_share",
]
# Regression's columns: the headline RMSE per split (target units), the generalization gap in
# RMSE, the validation MSE the decision ranks on, MAE and R² per split (evaluate's names).
REGRESSION_COLUMNS = [
    "entry",
    "l2_rates",
    "weight_decay",
    "train_rmse",
    "val_rmse",
    "test_rmse",
    "gen_gap",
    "val_mse",
    "train_mae",
    "val_mae",
    "test_mae",
    "train_r2",
    "val_r2",
    "test_r2",
    "l2_penalty",
    "sum_sq_weights",
    "near_linear_share",
    "saturated_share",
]


def columns_of(task: Task) -> list[str]:
    return REGRESSION_COLUMNS if task.is_regression else COLUMNS


def regularizer_label(entry: EntrySpec) -> str:
    """What regularizes the entry, in words a reader cannot mistake: a weight-decay entry is
    not "L2 0"."""
    parts = [f"L2 {entry.rates_label}"] if any(entry.rates) or entry.is_pure_l2 else []
    if entry.tuning.holds_close:
        parts.append(f"L2-SP {fine_tuning_words.sp_rates_label(entry)}")
    if entry.weight_decay:
        parts.append(f"weight decay {entry.weight_decay:g}")
    return " + ".join(parts)


def sweep_table(
    entries: tuple[EntrySpec, ...],
    metrics_dir: Path,
    details_dir: Path,
    task: Task,
    fine_tuning: bool = False,
) -> pd.DataFrame:
    """One row per entry, ranked (see `rank`). Diverged entries come last with NaN figures
    and `diverged_at_epoch` set. `fine_tuning`: with each entry's start, `l2_sp` rates,
    frozen layers and distances from the start (reporting/fine_tuning.py)."""
    columns = columns_of(task)
    if fine_tuning:
        columns = fine_tuning_words.with_start_columns(columns)
    rows = []
    for entry in entries:
        headline = contracts.read_stage_json(metrics_dir / f"{entry.name}.json", "evaluate")
        details = contracts.read_stage_json(details_dir / f"{entry.name}.json", "evaluate")
        base = details["seeds"][0]
        rows.append(
            {
                "entry": entry.name,
                "l2_rates": entry.rates_label,
                "weight_decay": entry.weight_decay,
                **(fine_tuning_words.start_cells(entry) if fine_tuning else {}),
                **base["metrics"],
                **{k: v for k, v in headline.items() if k.endswith(("_mean", "_std", "_se"))},
                **({"n_seeds": headline["n_seeds"]} if "n_seeds" in headline else {}),
                "diverged_at_epoch": headline.get("diverged_at_epoch"),
            }
        )
    table = pd.DataFrame(rows)
    for column in columns:
        if column not in table.columns:
            table[column] = math.nan  # every entry diverged
    spread = [c for c in table.columns if c.endswith(("_mean", "_std", "_se"))]
    spread += ["n_seeds"] if "n_seeds" in table.columns else []
    # `sum_sq_weights_mean` is a spread column, not a layer's.
    per_layer = [
        c
        for c in table.columns
        if c.startswith(("sq_weights_", *fine_tuning_words.LAYER_PREFIXES, "near_linear_share_"))
        and c not in {*columns, *spread}
    ]
    table = table[[*columns, *spread, *per_layer, "diverged_at_epoch"]]
    return rank(table, task)


def rank(table: pd.DataFrame, task: Task) -> pd.DataFrame:
    """Lowest mean cross-validation figure first with `choose.folds`, else lowest validation
    figure the decision ranks on (mean over seeds if there are several), then the lowest
    tie-break figure (validation cross-entropy, or MAE); diverged entries last."""
    figure, tiebreak = task.choosing_figure, task.tiebreak
    over_seeds = f"{figure}_mean" in table.columns
    keys = [f"{figure}_mean", f"{tiebreak}_mean"] if over_seeds else [figure]
    if task.cv_mean in table.columns:
        keys = [task.cv_mean, *keys]
    keys += [tiebreak, "entry"]
    return table.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)


def to_markdown(
    table: pd.DataFrame,
    entries: dict[str, EntrySpec],
    decision: Decision | None = None,
    *,
    task: Task,
) -> str:
    """The ranked table in Markdown, with the decision's chosen entry and the entries the
    judge cannot tell apart from it (`decision` None: every candidate diverged)."""
    best = table.iloc[0]
    val, test = task.val_figure, task.test_figure
    word, choice = task.word, task.choice_word
    # Classification's shares to 4 decimals, as always; a quantity in its own units to 4
    # significant digits (a price of 150000 has no use for decimals).
    digits = ".4g" if task.is_regression else ".4f"
    if pd.isna(best[val]):
        return "# L2 sweep\n\nEvery entry diverged: lower train.learning_rate or the rates.\n"
    over_seeds = (
        f" Mean over {int(best['n_seeds'])} seeds: val {word} {best[f'{val}_mean']:{digits}}"
        f" ± {best[f'{val}_std']:{digits}}, test {word} {best[f'{test}_mean']:{digits}}"
        f" ± {best[f'{test}_std']:{digits}} (± is the sample standard deviation)."
        if "n_seeds" in table.columns
        else ""
    )
    ties = ""
    if decision is not None:
        tied_words = ", ".join(decision.tied) or "none"
        ties = (
            f"\n\nChosen by {decision.choice.rule}: **{decision.chosen.name}**. Cannot be told "
            f"apart from it by a paired test on the same held-out rows ({decision.test}, "
            f"{decision.correction}): {tied_words}. See `choosing.md`, Decision."
        )
    if task.cv_mean in table.columns:
        over_seeds += (
            f" Ranked on mean cross-validation {choice} ({best[task.cv_mean]:{digits}} ± "
            f"{best[task.cv_se]:{digits}} SE over folds)."
        )
        ties = ties or "\n\nWhich entries the folds cannot tell apart: `choosing.md`, Decision."
    diverged = table[table["diverged_at_epoch"].notna()]
    diverged_text = "".join(
        f"\n\n**{row.entry} diverged at epoch {int(row.diverged_at_epoch)}** (loss NaN or "
        f"infinite): it has no figures."
        for row in diverged.itertuples()
    )
    hidden = ["diverged_at_epoch", "collapsed", *trivial.baseline_columns(task)]
    shown = table.drop(columns=[c for c in hidden if c in table.columns])
    rows = []
    for (_, row), (_, full) in zip(shown.iterrows(), table.iterrows(), strict=True):
        cells = [_cell(v) for v in row]
        if pd.notna(full["diverged_at_epoch"]):
            cells[list(shown.columns).index(task.train_figure)] = (
                f"diverged at epoch {int(full['diverged_at_epoch'])}"
            )
        if full.get("collapsed", False):
            cells[0] = f"{full['entry']} ({trivial.collapsed_words(task)})"
        rows.append(cells)
    if f"baseline_{val}" in table.columns:
        rows = trivial.with_baseline_rows(table, list(shown.columns), rows, _cell, task)
        over_seeds += trivial.baseline_sentence(table, task)
    lines = markdown.table(list(shown.columns), rows)
    ranked_on = f"mean CV {choice}" if task.cv_mean in table.columns else f"validation {choice}"
    return (
        "# L2 sweep\n\n"
        f"Best on {ranked_on}: "
        f"**{best['entry']}** "
        f"({regularizer_label(entries[best['entry']])}): "
        f"val {word} {best[val]:{digits}}, test {word} {best[test]:{digits}} "
        f"(reported, not used to choose).{over_seeds}{ties}{diverged_text}\n\n"
        + "\n".join(lines)
        + "\n"
    )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def rate_converter(
    rates: dict[str, float], batch_size: int, train_rows: int, task: Task
) -> str:
    """Markdown: each single-rate entry's Keras rate in the other conventions. A regression's
    conventions halve the squared error (scikit-learn's MLPRegressor, the textbook's ridge
    cost), which doubles the rate that matches c against Keras's plain mean squared error."""
    # Keras minimises loss + c·Σw²; each convention's penalty over its loss, made comparable.
    halved = 2 if task.is_regression else 1
    header = ["entry", "Keras rate c", "sklearn alpha", "textbook λ", "SGD weight decay"]
    rows = [
        [entry, f"{c:g}", f"{2 * batch_size * c / halved:g}", f"{2 * train_rows * c / halved:g}",
         f"{2 * c:g}"]
        for entry, c in sorted(rates.items(), key=lambda item: (item[1], item[0]))
    ]  # fmt: skip
    if task.is_regression:
        conventions = (
            "Keras adds c·Σw² to the mean squared error of each batch (here of the standardised "
            "target). scikit-learn's MLPRegressor minimises half the squared error plus "
            "alpha/(2n)·Σw² with n the batch size for its adam and sgd solvers, so "
            f"c = alpha / batch size (batch size {batch_size}). The textbook ridge cost "
            f"(1/2m)·Σ(error²) + λ/(2m)·Σw² over m = {train_rows} training rows gives c = λ/m."
        )
    else:
        conventions = (
            "Keras adds c·Σw² to the mean loss of each batch. scikit-learn's MLPClassifier adds "
            "alpha/(2n)·Σw² with n the batch size for its adam and sgd solvers, so "
            f"c = alpha / (2·batch size) (batch size {batch_size}). The textbook penalty "
            f"λ/(2m)·Σw² over m = {train_rows} training rows gives c = λ/(2m)."
        )
    lines = [
        "## The same rates in other conventions",
        "",
        f"{conventions} Under plain SGD "
        "an L2 rate c is the same update as decoupled weight decay 2c (the penalty's gradient "
        "is 2c·w); under Adam it is not, because Adam rescales the penalty's gradient per "
        "weight while AdamW's decay is not rescaled.",
        "",
        *markdown.table(header, rows),
    ]
    return "\n".join(lines) + "\n"


def rates_by_layer(layer_rates: Mapping[str, Sequence[tuple[str, float]]]) -> str:
    """Markdown: entry -> the rate of each named layer (one column per layer, in order)."""
    layers = [name for name, _ in next(iter(layer_rates.values()))]
    rows = [[entry, *(f"{rate:g}" for _, rate in rates)] for entry, rates in layer_rates.items()]
    lines = ["## L2 rate per layer", "", *markdown.table(["entry", *layers], rows)]
    return "\n".join(lines) + "\n"


def headline_of_best(table: pd.DataFrame, task: Task) -> dict:
    """The sweep's DVC metrics: which entry is best on validation, its validation and test
    figures (`best_val_error`, or `best_val_rmse`) and its training set's trivial baseline
    (names short: `dvc metrics diff` of the default sweep fits 80 columns)."""
    best = table.iloc[0]
    figures = {
        name: contracts.rounded(float(best[name]))
        for name in (task.val_figure, task.test_figure)
        if pd.notna(best[name])
    }
    found = {"best_entry": str(best["entry"]), **{f"best_{k}": v for k, v in figures.items()}}
    baseline = dict(zip(("train", "val", "test", "cv"), trivial.baseline_columns(task)[1:],
                        strict=True))  # fmt: skip
    if baseline["val"] in table.columns:  # its training set's; names short for DVC
        found |= {
            f"baseline_{split}": contracts.rounded(float(best[baseline[split]]))
            for split in ("val", "test", "cv")
            if baseline[split] in table
        }
    return found

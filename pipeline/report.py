"""Stage `report`: the whole sweep in one table, plots, and the sweep's MLflow parent run.

Writes `<out>/sweep.csv` and `<out>/sweep.md` (ranked on validation only, with a rate
converter), `<out>/choosing.md` (the decision refit made, `<refit>/decision.json`, and the
answers of pipeline/choosing/), `<out>/best.json` (the DVC metrics of the sweep: numbers
only), `<out>/decision.json` (the decision in words, for `record`), and under `<out>/plots/`
the data files that `dvc.yaml` declares as plots plus the same views as PNGs, which the
`record` stage puts into the sweep's MLflow parent run. Imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import choosing
from pipeline.config import EntrySpec, load_config, resolve_entries
from pipeline.core import contracts
from pipeline.core.errors import DataError
from pipeline.core.runner import run_stage
from pipeline.core.task import Task, task_named
from pipeline.reporting import (
    choosing_figures,
    choosing_page,
    data_note,
    fine_tuning,
    plots,
    readers,
    table,
    trivial,
    uncertainty,
    wording,
)  # fmt: skip
from pipeline.reporting import decision as decision_words

log = logging.getLogger(__name__)

# The answers to "which layer, more data or L2, which rates next" (pipeline/choosing/).
CHOOSING_FILE = "choosing.md"


def build_plots(
    sweep: pd.DataFrame,
    rates: dict[str, float],
    histories: dict[str, pd.DataFrame],
    kernels: dict[str, dict],
    split_rows: dict[str, int] | None = None,
    baseline: float | None = None,
    *,
    task: Task,
    target: str | None = None,
    val_se: dict[str, float] | None = None,
    sp_rates: dict[str, float] | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, object]]:
    """The data files for `dvc plots` and the matplotlib figures, both by file stem;
    `baseline`: the trivial baseline's validation figure, drawn as a reference line;
    `target`: the target's name for a regression's axes; `val_se`: entry -> the SE of its
    validation RMSE (regression); `sp_rates`: entry -> its `l2_sp` rate (fine-tuning)."""
    rows = plots.by_rate(sweep, rates)
    sq = plots.layer_series(sweep.columns, "sq_weights_")
    near = plots.layer_series(sweep.columns, "near_linear_share_")
    data = {
        "error_vs_rate": plots.error_by_rate(rows, split_rows, baseline, task=task, val_se=val_se),
        "sq_weights_vs_rate": plots.long_by_rate(rows, sq, "sq_weights"),
        "near_linear_vs_rate": plots.long_by_rate(
            rows, {**near, "near_linear_share": "all hidden"}, "share"
        ),
        "learning_curves_error": plots.long_curves(histories, plots.curve_error_series(task)),
        "learning_curves_loss": plots.long_curves(histories, plots.CURVE_LOSS_SERIES),
        fine_tuning.DISTANCE_PLOT: fine_tuning.distance_by_sp_rate(sweep, sp_rates or {}),
    }
    data["sq_weights_vs_rate"]["log10_sq_weights"] = np.log10(
        data["sq_weights_vs_rate"]["sq_weights"].clip(lower=1e-12)
    )
    # Weakest rate first; per-layer entries after the single-rate ones.
    order = list(rows["entry"]) + [e for e in sweep["entry"] if e not in rates]
    threshold = f"|z| < {contracts.NEAR_LINEAR_Z:g}"
    figures = {
        "error_vs_rate": plots.rate_figure(
            data["error_vs_rate"],
            "error",
            title=f"{'RMSE' if task.is_regression else 'Error'} vs L2 rate",
            ylabel=wording.figure_axis(task, target),
        ),
        "sq_weights_vs_rate": plots.rate_figure(
            data["sq_weights_vs_rate"],
            "sq_weights",
            title="Σw² per layer vs L2 rate",
            ylabel="sum of squared kernel weights",
            logy=True,
        ),
        "near_linear_vs_rate": plots.rate_figure(
            data["near_linear_vs_rate"],
            "share",
            title=f"tanh units in their near-linear range ({threshold}, train inputs)",
            ylabel=f"share of hidden pre-activations with {threshold}",
        ),
        "learning_curves": plots.curves_figure(
            histories, [e for e in order if e in histories], task, target
        ),
        "weight_histograms": plots.histograms_figure(kernels, [e for e in order if e in kernels]),
    }
    if not (distance := data[fine_tuning.DISTANCE_PLOT]).empty:
        figures[fine_tuning.DISTANCE_PLOT] = fine_tuning.distance_figure(distance)
    return data, figures


def best_figures(
    sweep: pd.DataFrame, decision: choosing.Decision | None, task: Task
) -> dict:
    """best.json: the entry with the lowest validation figure and its figures (named by the
    task), and the decision's figures (decision_words.numbers)."""
    figures = table.headline_of_best(sweep, task)
    if decision is not None:
        figures |= contracts.rounded_figures(decision_words.numbers(decision))
    return figures


def read_decision(refit_dir: Path, sweep: pd.DataFrame) -> choosing.Decision | None:
    """The decision refit made over this sweep (None: no candidate)."""
    found = contracts.read_decision(refit_dir)
    if found is None:
        return None
    decision = choosing.Decision.from_json(found)
    if decision.chosen.name not in set(sweep["entry"]):
        raise DataError(f"{refit_dir / contracts.DECISION_FILE}: stale; run `dvc repro refit`")
    return decision


def sweep_markdown(config, sweep, by_name, decision, task: Task) -> str:
    if config.model.is_mlp:
        return table.to_markdown(sweep, by_name, decision, task=task)
    order = [by_name[e] for e in sweep["entry"]]
    # Only the MLP has tanh shares (evaluate); its layers are hidden_1, ..., output in the
    # order of a list of rates (docs/own-model-and-data.md), another model's are named
    # here with their rates.
    shares = [c for c in ("near_linear_share", "saturated_share") if sweep[c].isna().all()]
    markdown = table.to_markdown(sweep.drop(columns=shares), by_name, decision, task=task)
    by_layer = {e.name: e.layer_rates for e in order}
    sp = fine_tuning.sp_rates_by_layer(order)
    return markdown + "\n" + table.rates_by_layer(by_layer) + (f"\n{sp}" if sp else "")


def write_outputs(out_dir: Path, sweep: pd.DataFrame, pages: dict[str, str], data, figures):
    plots_dir = out_dir / "plots"
    shutil.rmtree(plots_dir, ignore_errors=True)  # DVC keeps it (persist): drop stale files
    plots_dir.mkdir(parents=True)
    sweep.to_csv(out_dir / "sweep.csv", index=False, float_format="%.5g")
    for name, text in pages.items():
        (out_dir / name).write_text(text)
    for name, frame in data.items():
        frame.to_csv(plots_dir / f"{name}.csv", index=False, float_format="%.5g")
    for name, figure in figures.items():
        # No timestamp in the PNG: the same sweep gives the same bytes.
        figure.savefig(plots_dir / f"{name}.png", dpi=110, metadata={"Software": None})


def report(
    params: Path, metrics_dir: Path, details_dir: Path, models_dir: Path, prepared_dir: Path,
    out_dir: Path, refit_dir: Path,
) -> None:  # fmt: skip
    config = load_config(params)
    record = contracts.read_sweep_record(models_dir)
    entries = resolve_entries(config, record)
    by_name: dict[str, EntrySpec] = {e.name: e for e in entries}
    meta = contracts.read_meta(prepared_dir)
    task = task_named(meta.task)
    target = config.data.target_column if task.is_regression else None
    sweep = trivial.with_baseline(
        table.sweep_table(entries, metrics_dir, details_dir, task, record.from_file), details_dir,
        meta.class_names, task,
    )  # fmt: skip
    baseline = trivial.baseline_columns(task)
    reference = trivial.reference_baseline(sweep, by_name, task)
    cv = bool(config.choose.folds)
    trained = [
        e for e in sweep["entry"] if pd.isna(sweep.set_index("entry").at[e, "diverged_at_epoch"])
    ]
    rates = rate_axis(entries, trained, record.from_file)
    decision = read_decision(refit_dir, sweep)
    if task.is_regression and decision is not None and not cv:
        sweep = uncertainty.with_choosing_se(sweep, decision, task)
    data, figures = build_plots(
        sweep[sweep["entry"].isin(trained)],
        rates,
        readers.read_histories(models_dir, list(sweep["entry"])),
        readers.read_kernels(details_dir, trained),
        {"train": meta.rows["train"], "val": meta.rows["val"], "test": meta.rows["test"]},
        float(reference[baseline[2]]),
        task=task,
        target=target,
        val_se=uncertainty.val_rmse_se(decision) if task.is_regression else None,
        sp_rates=fine_tuning.sp_axis(entries, trained),
    )
    analysis = choosing.analyse(
        entries,
        sweep,
        readers.read_judge(details_dir, cross_validated=bool(config.choose.folds)),
        layers=list(record.layers),
        default_rows=config.data.effective_train_subset,
        default_noise=config.data.effective_label_noise,
        pool_rows=meta.pool_rows,
        decision=decision,
        task=task,
    )
    data |= choosing_page.plot_data(analysis)
    test_baselines = dict(zip(sweep["entry"], sweep[baseline[3]], strict=True))
    on_axes = trivial.on_the_axes(sweep, reference, cv, task)
    figures |= choosing_figures.figures(analysis, on_axes, test_baselines, task=task)
    note = data_note.training_data_note(meta, config.data)
    converter = table.rate_converter(rates, config.train.batch_size, meta.rows["train"], task)
    pages = {
        "sweep.md": data_note.with_note(
            sweep_markdown(config, sweep, by_name, decision, task), note
        )
        + "\n"
        + converter,
        CHOOSING_FILE: data_note.with_note(
            choosing_page.markdown(analysis, task) + fine_tuning.distances_section(sweep),
            note,
            trivial.baseline_paragraph(sweep, reference, cv, task),
        ),
    }
    write_outputs(out_dir, sweep, pages, data, figures)
    said = decision_words.summary(sweep, decision, analysis, note, task)
    contracts.write_json(out_dir / contracts.BEST_FILE, best_figures(sweep, decision, task))
    contracts.write_summary(out_dir, said)

    log_summary(sweep, said, out_dir, task)


def rate_axis(entries, trained: list[str], fine_tuning: bool = False) -> dict[str, float]:
    """entry -> its one rate, for the entries on the rate axis. Only pure-L2 entries have a
    place there: a weight-decay entry has L2 rate 0 but is not the unregularized model; nor
    has an entry trained on another training set. Fine-tuning: those from the start model,
    nothing frozen."""
    return {
        e.name: e.uniform_rate
        for e in entries
        if e.is_pure_l2 and e.uniform_rate is not None and e.name in trained and not e.uses_pool
        and e.tuning.from_start == fine_tuning and not e.tuning.frozen
    }  # fmt: skip


def log_summary(
    sweep: pd.DataFrame,
    said: contracts.DecisionSummary,
    out_dir: Path,
    task: Task,
) -> None:
    best = sweep.iloc[0]
    log.info(
        "best on validation: %s (val_rmse %.4g, test_rmse %.4g) of %d entries -> %s"
        if task.is_regression
        else "best on validation: %s (val_err %.3f, test_err %.3f) of %d entries -> %s",
        best["entry"],
        best[task.val_figure],
        best[task.test_figure],
        len(sweep),
        out_dir / "sweep.md",
    )
    if said.verdict:
        log.info("%s", said.verdict)
    # The report ends with what to try next: ready-to-paste commands (choosing.md).
    for command in said.next_commands:
        log.info("next: %s", command)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--details", type=Path, default=Path("evaluation"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--refit", type=Path, default=Path("refit"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    run_stage(
        "report",
        lambda: report(
            args.params,
            args.metrics,
            args.details,
            args.models,
            args.prepared,
            args.out,
            args.refit,
        ),
        outputs=[args.out / "plots"],
    )


if __name__ == "__main__":
    main()

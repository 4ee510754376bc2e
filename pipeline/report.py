"""Stage `report`: the whole sweep in one table, plots, and the sweep's MLflow parent run.

Writes `<out>/sweep.csv` and `<out>/sweep.md` (ranked on validation only, ties named, with a
rate converter), `<out>/best.json` (the DVC metrics of the sweep: best entry and its
errors), and under `<out>/plots/` the data files that `dvc.yaml` declares as plots plus the
same views as PNGs, which the `record` stage puts into the sweep's MLflow parent run.
Imports no TensorFlow.
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
from pipeline.config.rates import markdown_by_layer
from pipeline.core import contracts
from pipeline.core.runner import run_stage
from pipeline.reporting import data_note, plots, readers, table

log = logging.getLogger(__name__)

# The answers to "which layer, more data or L2, which rates next" (pipeline/choosing/).
CHOOSING_FILE = "choosing.md"


def build_plots(
    sweep: pd.DataFrame,
    rates: dict[str, float],
    histories: dict[str, pd.DataFrame],
    kernels: dict[str, dict],
    split_rows: dict[str, int] | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, object]]:
    """The data files for `dvc plots` and the matplotlib figures, both by file stem."""
    rows = plots.by_rate(sweep, rates)
    sq = plots.layer_series(sweep.columns, "sq_weights_")
    sq.pop("sq_weights_total", None)
    near = plots.layer_series(sweep.columns, "near_linear_share_")
    data = {
        "error_vs_rate": plots.error_by_rate(rows, split_rows),
        "sq_weights_vs_rate": plots.long_by_rate(rows, sq, "sq_weights"),
        "near_linear_vs_rate": plots.long_by_rate(
            rows, {**near, "near_linear_share": "all hidden"}, "share"
        ),
        "learning_curves_error": plots.long_curves(histories, plots.CURVE_ERROR_SERIES),
        "learning_curves_loss": plots.long_curves(histories, plots.CURVE_LOSS_SERIES),
    }
    data["sq_weights_vs_rate"]["log10_sq_weights"] = np.log10(
        data["sq_weights_vs_rate"]["sq_weights"].clip(lower=1e-12)
    )
    # Weakest rate first; per-layer entries after the single-rate ones.
    order = list(rows["entry"]) + [e for e in sweep["entry"] if e not in rates]
    threshold = f"|z| < {contracts.NEAR_LINEAR_Z:g}"
    figures = {
        "error_vs_rate": plots.rate_figure(
            data["error_vs_rate"], "error", title="Error vs L2 rate", ylabel="error (1 - accuracy)"
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
        "learning_curves": plots.curves_figure(histories, [e for e in order if e in histories]),
        "weight_histograms": plots.histograms_figure(kernels, [e for e in order if e in kernels]),
    }
    return data, figures


def write_outputs(
    out_dir: Path,
    sweep: pd.DataFrame,
    markdown: str,
    data: dict,
    figures: dict,
    decision: choosing.Decision | None = None,
):
    plots_dir = out_dir / "plots"
    shutil.rmtree(plots_dir, ignore_errors=True)  # DVC keeps it (persist): drop stale files
    plots_dir.mkdir(parents=True)
    sweep.to_csv(out_dir / "sweep.csv", index=False, float_format="%.5g")
    (out_dir / "sweep.md").write_text(markdown)
    contracts.write_json(out_dir / "best.json", best_figures(sweep, decision))
    for name, frame in data.items():
        frame.to_csv(plots_dir / f"{name}.csv", index=False, float_format="%.5g")
    for name, figure in figures.items():
        # No timestamp in the PNG: the same sweep gives the same bytes.
        figure.savefig(plots_dir / f"{name}.png", dpi=110, metadata={"Software": None})


def best_figures(sweep: pd.DataFrame, decision: choosing.Decision | None) -> dict:
    """best.json: the entry with the lowest validation error and, with held-out predictions,
    the decision (rule, chosen entry, its error ± SE, the entries it cannot be told from)."""
    figures = table.headline_of_best(sweep)
    if decision is not None:
        for key, value in decision.headline().items():
            if value is not None:
                figures[key] = contracts.rounded(value) if isinstance(value, float) else value
    return figures


def report(
    params: Path, metrics_dir: Path, details_dir: Path, models_dir: Path, prepared_dir: Path,
    out_dir: Path, refit_dir: Path | None = None,
) -> None:  # fmt: skip
    config = load_config(params)
    record = contracts.read_sweep_record(models_dir)
    entries = resolve_entries(config, record.layers)
    by_name: dict[str, EntrySpec] = {e.name: e for e in entries}
    meta = contracts.read_meta(prepared_dir)
    sweep = table.sweep_table(entries, metrics_dir, details_dir)
    trained = [
        e for e in sweep["entry"] if pd.isna(sweep.set_index("entry").at[e, "diverged_at_epoch"])
    ]
    # Only pure-L2 entries have a place on the rate axis: a weight-decay entry has L2 rate 0
    # but is not the unregularized model; nor has an entry trained on another training set.
    rates = {
        e.name: e.uniform_rate
        for e in entries
        if e.is_pure_l2 and e.uniform_rate is not None and e.name in trained and not e.uses_pool
    }
    data, figures = build_plots(
        sweep[sweep["entry"].isin(trained)],
        rates,
        readers.read_histories(models_dir, list(sweep["entry"])),
        readers.read_kernels(details_dir, trained),
        {"train": meta.rows["train"], "val": meta.rows["val"], "test": meta.rows["test"]},
    )
    folds = config.choose.folds
    held_out = readers.read_held_out(details_dir, cross_validated=bool(folds))
    decision = None
    if held_out is not None:
        decision = choosing.decide(
            entries,
            sweep,
            held_out,
            rule=config.choose.rule,
            seed=config.base.seed,
            test_rows=meta.rows["test"],
            folds=folds,
            refit=contracts.read_refit(refit_dir) if refit_dir and folds else None,
        )
    if config.model.builder == "mlp":
        markdown = table.to_markdown(sweep, by_name, meta.rows["val"], decision)
    else:
        # Only the MLP has tanh shares (evaluate); its layers are hidden_1, ..., output in the
        # order of a list of rates (docs/own-model-and-data.md), another model's are named
        # here with their rates.
        shares = [c for c in ("near_linear_share", "saturated_share") if sweep[c].isna().all()]
        markdown = table.to_markdown(
            sweep.drop(columns=shares), by_name, meta.rows["val"], decision
        )
        by_layer = {e: by_name[e].layer_rates for e in sweep["entry"]}
        markdown += "\n" + markdown_by_layer(by_layer)
    converter = table.rate_converter(rates, config.train.batch_size, meta.rows["train"])
    choosing_data, choosing_figures, choosing_md = choosing.analyse(
        entries,
        sweep,
        layers=list(record.layers),
        default_rows=config.data.effective_train_subset,
        default_noise=config.data.effective_label_noise,
        pool_rows=meta.pool_rows,
        val_rows=len(held_out.labels) if held_out is not None else meta.rows["val"],
        grid_is_set=bool(config.grid.rates),
        held_out=held_out,
        decision=decision,
    )
    data |= choosing_data
    figures |= choosing_figures
    note = data_note.training_data_note(meta, config.data)
    markdown = data_note.with_note(markdown, note) + "\n" + converter
    write_outputs(out_dir, sweep, markdown, data, figures, decision)
    (out_dir / CHOOSING_FILE).write_text(data_note.with_note(choosing_md, note))

    best = sweep.iloc[0]
    log.info(
        "best on validation: %s (val_err %.3f, test_err %.3f) of %d entries -> %s",
        best["entry"],
        best["val_error"],
        best["test_error"],
        len(sweep),
        out_dir / "sweep.md",
    )
    if decision is not None:
        log.info("%s", decision.verdict())
    # The report ends with what to try next: ready-to-paste commands (choosing.md).
    for line in choosing_md.split("## What to try next", 1)[-1].splitlines():
        if line.startswith("dvc "):
            log.info("next: %s", line)


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

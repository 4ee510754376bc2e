"""Stage `report`: the whole sweep in one table, plots, and one MLflow parent run.

Writes `<out>/sweep.csv` and `<out>/sweep.md` (sorted by validation error, with a rate
converter), and under `<out>/plots/` the data files that `dvc.yaml` declares as plots plus
the same views as PNGs. The best entry is chosen on validation error alone; the test error
is shown beside it but never used to choose.

MLflow: a parent run per sweep, keyed by which run stands for which entry, carries the
table and the PNGs; every entry's run is nested under it with the `mlflow.parentRunId` tag.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import plots
from pipeline.cli import run_stage
from pipeline.config import LabConfig, load_config
from pipeline.data import read_meta
from pipeline.errors import DataError
from pipeline.files import HISTORY_FILE
from pipeline.seeds import SPREAD_METRICS

log = logging.getLogger(__name__)

COLUMNS = [
    "entry",
    "l2_rates",
    "weight_decay",
    "train_error",
    "val_error",
    "test_error",
    "generalization_gap",
    "train_cross_entropy",
    "l2_penalty",
    "sq_weights_total",
    "near_linear_share",
    "saturated_share",
]


def sweep_table(config: LabConfig, metrics_dir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per entry in params.yaml (stale metrics files of removed entries are ignored),
    sorted by validation error (its mean over seeds when `base.repeat_seeds` is set); and the
    MLflow runs of the extra seeds' models, as `<entry>@seed<seed>` -> run id."""
    rows, seed_runs = [], {}
    for entry in config.sweep:
        path = metrics_dir / f"{entry}.json"
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro evaluate@{entry}`")
        metrics = json.loads(path.read_text())
        for seed, run_id in metrics.pop("seed_run_ids", {}).items():
            seed_runs[f"{entry}@seed{seed}"] = run_id
        rates = config.layer_rates(entry)
        rates_text = (
            f"{rates[0]:g}" if len(set(rates)) == 1 else " / ".join(f"{r:g}" for r in rates)
        )
        rows.append(
            {
                "entry": entry,
                "l2_rates": rates_text,
                "weight_decay": config.entry(entry).weight_decay,
                **metrics,
            }
        )
    table = pd.DataFrame(rows)
    per_layer = [
        c
        for c in table.columns
        if c.startswith(("sq_weights_", "near_linear_share_")) and c not in COLUMNS
    ]
    spread = [
        f"{name}_{stat}"
        for name in SPREAD_METRICS
        for stat in ("mean", "std")
        if f"{name}_mean" in table.columns
    ]
    spread += ["n_seeds"] if spread else []
    table = table[[*COLUMNS, *spread, *per_layer, "mlflow_run_id"]]
    order = "val_error_mean" if spread else "val_error"
    table = table.sort_values([order, "entry"], kind="stable").reset_index(drop=True)
    return table, seed_runs


def to_markdown(table: pd.DataFrame) -> str:
    best = table.iloc[0]
    over_seeds = (
        f" Mean over {int(best['n_seeds'])} seeds: val error {best['val_error_mean']:.4f}"
        f" ± {best['val_error_std']:.4f}, test error {best['test_error_mean']:.4f}"
        f" ± {best['test_error_std']:.4f} (± is the sample standard deviation)."
        if "n_seeds" in table.columns
        else ""
    )
    table = table.drop(columns=["mlflow_run_id"])
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [header, rule]
    for _, row in table.iterrows():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "# L2 sweep\n\n"
        f"Best on validation error: **{best['entry']}** (L2 {best['l2_rates']}): "
        f"val error {best['val_error']:.4f}, test error {best['test_error']:.4f} "
        f"(reported, not used to choose).{over_seeds}\n\n" + "\n".join(lines) + "\n"
    )


def rate_converter(rates: dict[str, float], batch_size: int, train_rows: int) -> str:
    """Markdown: each single-rate entry's Keras rate in the other conventions."""
    lines = [
        "## The same rates in other conventions",
        "",
        "Keras adds c·Σw² to the mean loss of each batch. scikit-learn's MLPClassifier adds "
        "alpha/(2n)·Σw² with n the batch size for its adam and sgd solvers, so "
        f"c = alpha / (2·batch size) (batch size {batch_size}). The textbook penalty "
        f"λ/(2m)·Σw² over m = {train_rows} training rows gives c = λ/(2m). Under plain SGD "
        "an L2 rate c is the same update as decoupled weight decay 2c (the penalty's gradient "
        "is 2c·w); under Adam it is not, because Adam rescales the penalty's gradient per "
        "weight while AdamW's decay is not rescaled.",
        "",
        "| entry | Keras rate c | sklearn alpha | textbook λ | SGD weight decay |",
        "|---|---|---|---|---|",
    ]
    for entry, c in sorted(rates.items(), key=lambda item: (item[1], item[0])):
        lines.append(
            f"| {entry} | {c:g} | {2 * batch_size * c:g} | {2 * train_rows * c:g} | {2 * c:g} |"
        )
    return "\n".join(lines) + "\n"


def read_histories(models_dir: Path, entries: list[str]) -> dict[str, pd.DataFrame]:
    histories = {}
    for entry in entries:
        path = models_dir / entry / HISTORY_FILE
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro train@{entry}`")
        histories[entry] = pd.read_csv(path)
    return histories


def read_kernels(models_dir: Path, entries: list[str], seed: int) -> dict[str, dict]:
    """entry -> layer -> kernel array, from each saved model."""
    from pipeline.runtime import init_tensorflow

    init_tensorflow(seed)
    import keras

    from pipeline.model import dense_layers

    kernels = {}
    for entry in entries:
        net = keras.saving.load_model(models_dir / entry / "model.keras", safe_mode=True)
        kernels[entry] = {layer.name: layer.kernel.numpy() for layer in dense_layers(net)}
    return kernels


def error_by_rate(rows: pd.DataFrame) -> pd.DataFrame:
    """Train/val/test error per rate: the mean over seeds with its standard deviation as
    `error_std` when `base.repeat_seeds` is set, else the single model's error."""
    if "val_error_mean" not in rows.columns:
        return plots.long_by_rate(rows, plots.ERROR_SERIES, "error")
    means = {f"{column}_mean": name for column, name in plots.ERROR_SERIES.items()}
    stds = {f"{column}_std": name for column, name in plots.ERROR_SERIES.items()}
    errors = plots.long_by_rate(rows, means, "error")
    # Same rows, same series order: the melted frames line up row for row.
    errors["error_std"] = plots.long_by_rate(rows, stds, "error_std")["error_std"].to_numpy()
    return errors


def build_plots(
    table: pd.DataFrame,
    rates: dict[str, float],
    histories: dict[str, pd.DataFrame],
    kernels: dict[str, dict],
) -> tuple[dict[str, pd.DataFrame], dict[str, object]]:
    """The data files for `dvc plots` and the matplotlib figures, both by file stem."""
    from pipeline.metrics import NEAR_LINEAR_Z  # imports Keras: after init_tensorflow

    rows = plots.by_rate(table, rates)
    sq = plots.layer_series(table.columns, "sq_weights_")
    sq.pop("sq_weights_total", None)
    near = plots.layer_series(table.columns, "near_linear_share_")
    data = {
        "error_vs_rate": error_by_rate(rows),
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
    order = list(rows["entry"]) + [e for e in table["entry"] if e not in rates]
    threshold = f"|z| < {NEAR_LINEAR_Z:g}"
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
        "learning_curves": plots.curves_figure(histories, order),
        "weight_histograms": plots.histograms_figure(kernels, order),
    }
    return data, figures


def log_sweep(
    experiment: str,
    table: pd.DataFrame,
    seed_runs: dict[str, str],
    out_dir: Path,
    figures: dict[str, object],
) -> str:
    """Record the sweep as an MLflow parent run and nest every model's run under it."""
    from pipeline import tracking

    entry_runs = {**dict(zip(table["entry"], table["mlflow_run_id"], strict=True)), **seed_runs}
    best = table.iloc[0]
    with tracking.sweep_run(experiment, entry_runs) as parent_id:
        missing = tracking.adopt_runs(parent_id, entry_runs)
        tracking.set_tags(
            {
                "sweep_entries": ",".join(table["entry"]),
                "best_entry": best["entry"],
                "missing_entry_runs": ",".join(missing) or "none",
            }
        )
        tracking.log_metrics(
            {
                "best_val_error": best["val_error"],
                "best_test_error": best["test_error"],
                "n_entries": len(table),
            }
        )
        for name in ("sweep.csv", "sweep.md"):
            tracking.log_artifact(out_dir / name)
        for name, figure in figures.items():
            tracking.log_figure(figure, name)
    for entry in missing:
        log.warning(
            "%s: MLflow run %s is not in this store (restored from a DVC cache filled "
            "elsewhere?); `dvc repro -f -s train@%s && dvc repro` records it again",
            entry,
            entry_runs[entry],
            entry.split("@")[0],
        )
    return parent_id


def report(
    params: Path, metrics_dir: Path, models_dir: Path, prepared_dir: Path, out_dir: Path
) -> None:
    config = load_config(params)
    table, seed_runs = sweep_table(config, metrics_dir)
    entries = list(table["entry"])
    # Only pure-L2 entries have a place on the rate axis: a weight-decay entry has L2 rate 0
    # but is not the unregularized model.
    l2_only = [e for e in entries if config.entry(e).weight_decay == 0]
    rates = plots.uniform_rates({e: config.layer_rates(e) for e in l2_only})
    train_rows = read_meta(prepared_dir)["rows"]["train"]
    data, figures = build_plots(
        table,
        rates,
        read_histories(models_dir, entries),
        read_kernels(models_dir, entries, config.base.seed),
    )

    plots_dir = out_dir / "plots"
    shutil.rmtree(plots_dir, ignore_errors=True)  # DVC keeps it (persist): drop stale files
    plots_dir.mkdir(parents=True)
    table.to_csv(out_dir / "sweep.csv", index=False, float_format="%.6g")
    converter = rate_converter(rates, config.train.batch_size, train_rows)
    (out_dir / "sweep.md").write_text(to_markdown(table) + "\n" + converter)
    for name, frame in data.items():
        frame.to_csv(plots_dir / f"{name}.csv", index=False, float_format="%.6g")
    for name, figure in figures.items():
        figure.savefig(plots_dir / f"{name}.png", dpi=110)
    parent_id = log_sweep(config.base.experiment, table, seed_runs, out_dir, figures)

    best = table.iloc[0]
    log.info(
        "best on validation: %s (val_err %.3f, test_err %.3f) of %d entries -> %s; "
        "MLflow parent run %s",
        best["entry"],
        best["val_error"],
        best["test_error"],
        len(table),
        out_dir / "sweep.md",
        parent_id,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    run_stage(
        "report",
        lambda: report(args.params, args.metrics, args.models, args.prepared, args.out),
    )


if __name__ == "__main__":
    main()

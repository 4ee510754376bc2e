"""Stage `train@<entry>`: train one MLP at the entry's L2 rates and record it in MLflow.

Writes `<out>/model.keras`, `<out>/model.weights.h5`, `<out>/config.json` (the resolved
params the model was trained with), `<out>/history.csv` (one row per epoch, the same numbers
as MLflow's `epoch_*` metrics, for the report's learning curves) and `<out>/run.json` (the
MLflow run that evaluate adds to). With `base.repeat_seeds`, the same files for each extra
seed go to `<out>/repeats/seed_<seed>/`, each model its own MLflow run.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

from pipeline.cli import run_stage
from pipeline.config import LabConfig, load_config
from pipeline.files import HISTORY_FILE, REPEATS_DIR, publish_dir, staging_dir

log = logging.getLogger(__name__)


def run_params(config: LabConfig, entry: str) -> dict:
    """What this entry's model depends on, as logged to MLflow and saved beside the weights."""
    from pipeline.model import dense_layer_names

    rates = config.layer_rates(entry)
    names = dense_layer_names(len(config.model.hidden_units))
    uniform = len(set(rates)) == 1
    return {
        "entry": entry,
        # One comparable number per run when all layers share a rate, for the MLflow charts.
        "l2": rates[0] if uniform else "per-layer",
        "l2_rate": dict(zip(names, rates, strict=True)),
        "weight_decay": config.entry(entry).weight_decay,
        "seed": config.base.seed,
        "data": config.data.model_dump(),
        "model": config.model.model_dump(),
        "train": config.train.model_dump(),
    }


class HistoryRecorder:
    """An epoch sink that keeps every epoch's metrics, to write them beside the model."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        self.rows.append({"epoch": epoch, **metrics})

    def write(self, path: Path) -> None:
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)


def train(params: Path, entry: str, prepared_dir: Path, out_dir: Path) -> None:
    config = load_config(params)
    config.entry(entry)

    from pipeline.runtime import init_tensorflow

    init_tensorflow(config.base.seed)
    # Imported only now: TensorFlow reads its settings once, at import.
    from pipeline import data, tracking

    # An unreachable or unusable store fails here, before any output folder exists.
    tracking.use_experiment(config.base.experiment)

    splits = {name: data.read_split(prepared_dir, name) for name in ("train", "val")}
    meta = data.read_meta(prepared_dir)
    # Written beside the final folder and renamed into place, so an interrupted run
    # never leaves a folder that looks complete.
    staging = staging_dir(out_dir)
    train_seed(config, entry, config.base.seed, splits, meta, staging)
    for seed in config.base.repeat_seeds:
        repeat_dir = staging / REPEATS_DIR / f"seed_{seed}"
        repeat_dir.mkdir(parents=True)
        train_seed(config, entry, seed, splits, meta, repeat_dir)
    publish_dir(staging, out_dir)


def train_seed(
    config: LabConfig, entry: str, seed: int, splits: dict, meta: dict, folder: Path
) -> None:
    """Train the entry's model with `seed` (initialisation and batch order) into `folder`,
    as one MLflow run."""
    from pipeline import model, tracking, training
    from pipeline.runtime import init_tensorflow

    init_tensorflow(seed)
    net = model.build_mlp(
        meta["n_features"],
        len(meta["class_names"]),
        config.model.hidden_units,
        config.model.activation,
        config.layer_rates(entry),
    )
    resolved = {**run_params(config, entry), "seed": seed}
    label = entry if seed == config.base.seed else f"{entry} (seed {seed})"
    with tracking.entry_run(
        config.base.experiment, entry, extra_tags={"seed": str(seed)}
    ) as run_id:
        tracking.log_params(resolved)
        epoch_logger = tracking.EpochMetricsLogger(run_id)
        history = HistoryRecorder()
        seconds = training.fit(
            net,
            splits["train"],
            splits["val"],
            entry=label,
            learning_rate=config.train.learning_rate,
            batch_size=config.train.batch_size,
            epochs=config.train.epochs,
            seed=seed,
            sinks=[epoch_logger, history],
            weight_decay=config.entry(entry).weight_decay,
        )
        epoch_logger.flush()
        tracking.log_metrics({"fit_seconds": seconds})
        net.save(folder / "model.keras")
        net.save_weights(folder / "model.weights.h5")
        (folder / "config.json").write_text(json.dumps(resolved, indent=2) + "\n")
        history.write(folder / HISTORY_FILE)
        model_uri = tracking.log_keras_model(net, splits["train"].features[:5])
        tracking.log_artifact(folder / "model.weights.h5", folder="weights")
        tracking.log_artifact(folder / "config.json")
        tracking.write_run_file(folder, run_id, model_uri)
    log.info("%s: trained in %.1fs, MLflow run %s", label, seconds, run_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entry", required=True, help="sweep entry name in params.yaml")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, required=True, help="e.g. models/<entry>")
    args = parser.parse_args(argv)
    run_stage("train", lambda: train(args.params, args.entry, args.prepared, args.out))


if __name__ == "__main__":
    main()

"""Stage `train`: every model of the sweep, as towers of Keras graphs, in groups.

One model per entry of `sweep:` and per seed (`base.seed`, then `base.repeat_seeds`), each
bit-identical to the same model trained alone (pipeline/modeling/towers.py). Groups of towers
(pipeline/compute) train in this process, in local worker processes (`compute.workers`) or
on a Ray cluster (RAY_ADDRESS), with the same bits; only this process talks to MLflow. For
each model, writes
`<out>/<entry>/` (extra seeds: `<out>/<entry>/repeats/seed_<seed>/`) with the standalone
Keras model, its weights, the resolved params (`config.json`) and the per-epoch history; and
`<out>/sweep.json`, every model's folder and divergence. A model whose loss turned NaN or
infinite keeps its history and config, gets no model file, and its run ends FAILED.

Every file's bytes depend on the params and data only (no run id, no time stamp), so
`dvc.lock` repeats from run to run; the sweep's MLflow parent run carries the digest of the
folder (contracts.MODELS_DIGEST_TAG), by which later stages find the runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import BuilderRef, LabConfig, ModelSpec, load_config
from pipeline.core import contracts, stable_bytes
from pipeline.core.epoch_metrics import EPOCH_METRICS
from pipeline.core.errors import LabError
from pipeline.core.files import publish_dir, staging_dir
from pipeline.core.runner import run_stage, stop_if_interrupted

if TYPE_CHECKING:
    from pipeline.compute.sweep_plan import SweepPlan

log = logging.getLogger(__name__)


def tower_params(config: LabConfig, tower: ModelSpec, data: dict) -> dict:
    """What this model depends on, as logged to MLflow and saved beside the weights; `data`:
    the data settings as applied to its training set (planning.applied_data)."""
    entry = tower.entry
    params = {
        "entry": entry.name,
        # One comparable number per run when all layers share a rate, for the MLflow charts.
        "l2": entry.uniform_rate if entry.uniform_rate is not None else "per-layer",
        "l2_rate": dict(entry.layer_rates),
        "weight_decay": entry.weight_decay,
        "seed": tower.seed,
        "data": data,
        "model": config.model.model_dump(),
        "train": config.train.model_dump(),
    }
    return params if tower.fold is None else {**params, "fold": tower.fold}


class HistoryRecorder:
    """An epoch sink that keeps every model's per-epoch metrics, to write them beside it."""

    def __init__(self) -> None:
        # model -> epoch -> row
        self.rows: dict[str, dict[int, dict[str, float]]] = {}

    def __call__(self, epoch: int, per_model: dict[str, dict[str, float]]) -> None:
        for name, metrics in per_model.items():
            self.rows.setdefault(name, {})[epoch] = {"epoch": epoch, **metrics}

    def write(self, name: str, path: Path) -> None:
        rows = [row for _, row in sorted(self.rows.get(name, {}).items())]
        fields = ["epoch", *EPOCH_METRICS]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)


def fit_sweep(plan: SweepPlan, runs_of_sweep):
    """Train every group of towers with the configured executor, streaming epoch metrics to
    MLflow and to a history; the stage's models end with the trained weights."""
    from pipeline.compute import run_groups, sweep_groups
    from pipeline.core.progress import GroupedProgress
    from pipeline.tracking import records

    config = plan.config
    epoch_logger = records.EpochMetricsLogger(runs_of_sweep.child_ids)
    history = HistoryRecorder()
    progress = GroupedProgress(config.train.epochs, len(plan.towers))

    def on_epoch(epoch: int, per_tower: dict) -> None:
        stop_if_interrupted()
        for sink in (epoch_logger, history, progress):
            sink(epoch, per_tower)

    tasks = sweep_groups(config, plan.towers, plan.meta, plan.prepared_dir, plan.builder)
    models = {model.name: model for model in plan.models}
    outcome = run_groups(tasks, config.compute, on_epoch, models)
    epoch_logger.flush()
    for result in outcome.results:
        for name, weights in result.weights.items():
            models[name].set_weights(weights)
            tags = {f"compute.{key}": value for key, value in result.environment.items()}
            tags["compute.group"] = str(result.index + 1)
            tags["compute.attempts"] = str(result.attempts)
            records.set_tags(runs_of_sweep.child_ids[name], tags)
    records.log_metrics(runs_of_sweep.parent_id, {"fit_seconds": outcome.seconds})
    return outcome, history


def train(params: Path, prepared_dir: Path, out_dir: Path) -> None:
    config = load_config(params)

    from pipeline.compute import executor_label
    from pipeline.compute.sweep_plan import plan_sweep
    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(config.base.seed)
    # Imported only now: TensorFlow reads its settings once, at import.
    from pipeline.tracking import records, runs, store

    plan = plan_sweep(config, prepared_dir, BuilderRef.of_params(config.model, params))
    # An unreachable or unusable store fails here, before any output folder exists.
    experiment_id = store.use_experiment(config.base.experiment)
    names = [tower.name for tower in plan.towers]
    tags = {t.name: tower_tags(t) for t in plan.towers}
    # Fold runs (choose.folds) nest under their entry's run, entry runs under the sweep's.
    nest_under = {t.name: t.owner for t in plan.towers if t.owner is not None}
    # Written beside the final folder and renamed into place, so an interrupted run
    # never leaves a folder that looks complete.
    staging = staging_dir(out_dir)
    with runs.sweep_runs(experiment_id, names, tags, nest_under) as runs_of_sweep:
        for tower in plan.towers:
            params = tower_params(config, tower, plan.trained_on[tower.name])
            records.log_params(runs_of_sweep.child_ids[tower.name], params)
        folds = f" x (1 + {config.choose.folds} folds)" if config.choose.folds else ""
        log.info(
            "training %d models (%d entries x %d seeds%s) in %s; MLflow parent run %s",
            len(plan.towers),
            len(config.sweep),
            1 + len(config.base.repeat_seeds),
            folds,
            executor_label(config.compute),
            runs_of_sweep.parent_id,
        )
        outcome, history = fit_sweep(plan, runs_of_sweep)
        stop_if_interrupted()  # before any run ends FINISHED or any output is published
        saved = [
            save_tower(staging, plan, i, history, runs_of_sweep, outcome)
            for i in range(len(plan.towers))
        ]
        if outcome.failures:
            # The groups that trained are recorded; no output folder replaces the last one.
            raise LabError(
                "; ".join(
                    f"group {f.index + 1} ({', '.join(f.names)}) failed: {f.reason}"
                    for f in outcome.failures
                )
            )
        record = contracts.SweepRecord(tuple(saved), tuple(plan.layers))
        contracts.write_sweep_record(staging, record)
        digest = contracts.models_digest(staging)
        records.set_tags(runs_of_sweep.parent_id, {contracts.MODELS_DIGEST_TAG: digest})
    publish_dir(staging, out_dir)
    log.info("trained %d models in %.1fs -> %s", len(plan.towers), outcome.seconds, out_dir)
    for name, epoch in outcome.diverged_at_epoch.items():
        log.warning(
            "warning: %s diverged at epoch %d (loss NaN or infinite); lower its L2 rate or "
            "train.learning_rate. The other models are recorded.",
            name,
            epoch,
        )


def tower_tags(tower: ModelSpec) -> dict[str, str]:
    tags = {"entry": tower.entry.name, "seed": str(tower.seed)}
    return tags if tower.fold is None else {**tags, "fold": str(tower.fold)}


def save_tower(staging: Path, plan: SweepPlan, index: int, history, runs_of_sweep, outcome):
    """Write tower `index`'s model folder, log its model and end its run; returns its record.
    A tower whose group failed gets its config and history, and its run ends FAILED."""
    from pipeline.tracking import records

    tower, model = plan.towers[index], plan.models[index]
    diverged = outcome.diverged_at_epoch.get(tower.name)
    failed = outcome.failed.get(tower.name)
    seed = tower.seed if tower.is_repeat else None
    folder = contracts.model_dir(staging, tower.entry.name, seed, tower.fold)
    folder.mkdir(parents=True)
    run_id = runs_of_sweep.child_ids[tower.name]
    params = tower_params(plan.config, tower, plan.trained_on[tower.name])
    (folder / contracts.CONFIG_FILE).write_text(json.dumps(params, indent=2) + "\n")
    history.write(tower.name, folder / contracts.HISTORY_FILE)
    records.log_artifact(run_id, folder / contracts.CONFIG_FILE)
    if failed is not None:
        runs_of_sweep.fail(tower.name, f"its group failed: {failed}")
    elif diverged is None and tower.fold is not None:
        # A fold's model only scores its held-out fold (evaluate): not logged as a model.
        stable_bytes.save_keras_model(model, folder / contracts.MODEL_FILE)
        runs_of_sweep.finish(tower.name)
    elif diverged is None:
        stable_bytes.save_keras_model(model, folder / contracts.MODEL_FILE)
        model.save_weights(folder / contracts.WEIGHTS_FILE)
        model_uri = records.log_keras_model(run_id, model, plan.input_example)
        records.set_tags(run_id, {"model_uri": model_uri})
        records.log_artifact(run_id, folder / contracts.WEIGHTS_FILE, folder="weights")
        runs_of_sweep.finish(tower.name)
    else:
        runs_of_sweep.fail(
            tower.name, f"diverged at epoch {diverged}: the loss became NaN or infinite"
        )
    return contracts.TrainedModel(
        entry=tower.entry.name,
        seed=tower.seed,
        folder=str(folder.relative_to(staging)),
        diverged_at_epoch=diverged,
        fold=tower.fold,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("models"))
    args = parser.parse_args(argv)
    run_stage("train", lambda: train(args.params, args.prepared, args.out), outputs=[args.out])


if __name__ == "__main__":
    main()

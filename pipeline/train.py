"""Stage `train`: every model of the sweep, as towers of Keras graphs, in groups, except
the models the model store already holds.

One model per entry of `sweep:` and per seed (`base.seed`, then `base.repeat_seeds`), each
bit-identical to the same model trained alone (pipeline/modeling/towers.py). So a model is
a pure function of its inputs: the store (pipeline/model_store) keeps every trained model
under a key of those inputs, and a model whose key it holds is not trained again but written
from the store. The rest train in groups of towers (pipeline/compute) in this process, in
local worker processes (`compute.workers`) or on a Ray cluster (RAY_ADDRESS), with the same
bits; only this process talks to MLflow and the store. For each model, writes
`<out>/<entry>/` (extra seeds: `<out>/<entry>/repeats/seed_<seed>/`; see model_folders.py)
and `<out>/sweep.json`, every model's folder and divergence. A model whose loss turned NaN
or infinite keeps its history and config, gets no model file, and its run ends FAILED.

Every file's bytes depend on the params and data only (no run id, no time stamp, nor
whether a model came from the store), so `dvc.lock` repeats from run to run; the sweep's
MLflow parent run carries the digest of the folder (contracts.MODELS_DIGEST_TAG), by which
later stages find the runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import BuilderRef, LabConfig, load_config
from pipeline.core import contracts
from pipeline.core.errors import LabError
from pipeline.core.files import publish_dir, staging_dir
from pipeline.core.runner import run_stage, stop_if_interrupted
from pipeline.model_folders import (
    HistoryRecorder,
    epochs_of,
    tower_params,
    tower_tags,
    write_model_folder,
)

if TYPE_CHECKING:
    from pipeline.compute.sweep_plan import SweepPlan
    from pipeline.model_store import Lookup

log = logging.getLogger(__name__)


def fit_sweep(plan: SweepPlan, names: list[str], runs_of_sweep):
    """Train towers `names` of the plan in groups with the configured executor, streaming
    epoch metrics to MLflow and to a history; their models end with the trained weights."""
    from pipeline.compute import GroupOutcomes, run_groups, sweep_groups
    from pipeline.core.progress import GroupedProgress
    from pipeline.core.task import task_named
    from pipeline.tracking import records

    config = plan.config
    task = task_named(plan.meta.task)
    history = HistoryRecorder(task.epoch_metrics)
    if not names:
        return GroupOutcomes(), history
    epoch_logger = records.EpochMetricsLogger(runs_of_sweep.child_ids)
    progress = GroupedProgress(config.train.epochs, len(names), task=task)

    def on_epoch(epoch: int, per_tower: dict) -> None:
        stop_if_interrupted()
        for sink in (epoch_logger, history, progress):
            sink(epoch, per_tower)

    towers = [t for t in plan.towers if t.name in names]
    tasks = sweep_groups(config, towers, plan.meta, plan.prepared_dir, plan.builder)
    models = {model.name: model for model in plan.models}
    outcome = run_groups(tasks, config.compute, on_epoch, models)
    epoch_logger.flush()
    for result in outcome.results:
        for name, weights in result.weights.items():
            models[name].set_weights(weights)
            history.environments[name] = result.environment
            tags = {f"compute.{key}": value for key, value in result.environment.items()}
            tags["compute.group"] = str(result.index + 1)
            tags["compute.attempts"] = str(result.attempts)
            records.set_tags(runs_of_sweep.child_ids[name], tags)
    records.log_metrics(runs_of_sweep.parent_id, {"fit_seconds": outcome.seconds})
    return outcome, history


def look_up_models(config: LabConfig, plan: SweepPlan, fingerprint):
    """The store, and which of the plan's models it holds (pipeline/model_store)."""
    from pipeline.compute.planning import training_set_of
    from pipeline.model_store import (
        ModelStore,
        forced_retrain,
        ingredients,
        look_up,
        store_location,
        why_retrained,
    )

    store = ModelStore(store_location())
    wanted = {
        tower.name: ingredients(
            fingerprint,
            config,
            tower.entry,
            tower.seed,
            training_set_of(tower, config.data, plan.meta.pool_rows),
        )
        for tower in plan.towers
    }
    forced = forced_retrain()
    lookup = look_up(store, wanted, forced)
    if forced:
        log.info("training every model (%s); the model store is not read", forced)
    else:
        for reason in why_retrained(store, lookup):
            log.info("%s", reason)
    return store, lookup


def train(params: Path, prepared_dir: Path, out_dir: Path) -> None:
    config = load_config(params)

    from pipeline.compute import executor_label
    from pipeline.compute.sweep_plan import plan_sweep
    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(config.base.seed)
    # Imported only now: TensorFlow reads its settings once, at import.
    from pipeline.model_store import Fingerprint
    from pipeline.tracking import records, runs, store

    builder = BuilderRef.of_params(config.model, params)
    plan = plan_sweep(config, prepared_dir, builder)
    models_store, lookup = look_up_models(
        config, plan, Fingerprint.of(config, prepared_dir, builder)
    )
    # An unreachable or unusable store fails here, before any output folder exists.
    experiment_id = store.use_experiment(config.base.experiment)
    names = [tower.name for tower in plan.towers]
    tags = {t.name: tower_tags(t) for t in plan.towers}
    # Fold runs (choose.folds) nest under their entry's run, entry runs under the sweep's.
    nest_under = {t.name: t.owner for t in plan.towers if t.owner is not None}
    missing = lookup.missing()
    # Written beside the final folder and renamed into place, so an interrupted run
    # never leaves a folder that looks complete.
    staging = staging_dir(out_dir)
    with runs.sweep_runs(experiment_id, names, tags, nest_under) as runs_of_sweep:
        for tower in plan.towers:
            params = tower_params(config, tower, plan.trained_on[tower.name])
            records.log_params(runs_of_sweep.child_ids[tower.name], params)
        executor = executor_label(config.compute)
        log.info("%s", sweep_line(config, plan, lookup, models_store.root, executor,
                                  runs_of_sweep.parent_id))  # fmt: skip
        counts = {"models_trained": len(missing), "models_reused": len(lookup.found)}
        records.log_metrics(runs_of_sweep.parent_id, counts)
        outcome, history = fit_sweep(plan, missing, runs_of_sweep)
        stop_if_interrupted()  # before any run ends FINISHED or any output is published
        saved = [
            save_tower(staging, plan, i, history, runs_of_sweep, outcome, lookup, models_store)
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
        layers = plan.layers
        record = contracts.SweepRecord(
            tuple(saved),
            layers.regularizable,
            layers.with_start if layers.from_file else (),
            layers.weighted if layers.from_file else (),
            layers.from_file,
        )
        contracts.write_sweep_record(staging, record)
        digest = contracts.models_digest(staging)
        records.set_tags(runs_of_sweep.parent_id, {contracts.MODELS_DIGEST_TAG: digest})
    publish_dir(staging, out_dir)
    models_store.close(keep=set(lookup.keys.values()))
    log.info("trained %d models in %.1fs, reused %d -> %s", len(missing), outcome.seconds,
             len(lookup.found), out_dir)  # fmt: skip
    # Also a reused model that diverged when it was trained: the same model, the same warning.
    diverged = {t.name: m.diverged_at_epoch for t, m in zip(plan.towers, saved, strict=True)}
    for name, epoch in diverged.items():
        if epoch is None:
            continue
        log.warning(
            "warning: %s diverged at epoch %d (loss NaN or infinite); lower its L2 rate or "
            "train.learning_rate. The other models are recorded.",
            name,
            epoch,
        )


def sweep_line(config, plan, lookup: Lookup, store_root: Path, executor: str, parent: str) -> str:
    folds = f" x (1 + {config.choose.folds} folds)" if config.choose.folds else ""
    counted = (
        f"{len(plan.towers)} models ({len(config.sweep)} entries x "
        f"{1 + len(config.base.repeat_seeds)} seeds{folds})"
    )
    reused = len(lookup.found)
    if reused:
        where = shown_path(store_root)
        counted = f"{len(plan.towers) - reused} of {counted}; {reused} reused from {where}"
    return f"training {counted} in {executor}; MLflow parent run {parent}"


def shown_path(path: Path) -> str:
    """`path` from the project root when it is inside: short enough for `dvc repro`'s lines."""
    from pipeline.core.project_root import project_root

    try:
        return f"{path.relative_to(project_root())}/"
    except ValueError:
        return str(path)


def save_tower(staging: Path, plan, index: int, history, runs_of_sweep, outcome, lookup, store):
    """Write tower `index`'s model folder from training or the store, record it in MLflow and
    end its run; a model trained now goes into the store. Returns its record. A tower whose
    group failed gets its config and history, and its run ends FAILED."""
    from pipeline.model_store import StoredModel
    from pipeline.model_store.key import as_trained_on, digest_of
    from pipeline.modeling.regularize import saved_as_plain_network
    from pipeline.tracking import records, reused

    tower, model = plan.towers[index], plan.models[index]
    stored = lookup.found.get(tower.name)
    if stored is not None:
        model.set_weights(stored.weights)
        diverged, history_bytes = stored.diverged_at_epoch, stored.history
    else:
        diverged = outcome.diverged_at_epoch.get(tower.name)
        history_bytes = history.csv_bytes(tower.name)
    failed = outcome.failed.get(tower.name)
    seed = tower.seed if tower.is_repeat else None
    folder = contracts.model_dir(staging, tower.entry.name, seed, tower.fold)
    run_id = runs_of_sweep.child_ids[tower.name]
    params = tower_params(plan.config, tower, plan.trained_on[tower.name])
    keeps_model = failed is None and diverged is None
    write_model_folder(folder, params, history_bytes, model if keeps_model else None,
                       with_weights_file=tower.fold is None)  # fmt: skip
    records.log_artifact(run_id, folder / contracts.CONFIG_FILE)
    model_uri = None
    # MLflow's flavor saves the model: as the plain network, like models/ (no w0 in the file).
    with saved_as_plain_network(model):
        if stored is not None:
            model_uri = reused.record_reused(
                run_id, stored, epochs_of(stored.history), model, plan.input_example, tower
            )
        elif keeps_model and tower.fold is None:
            # A fold's model only scores its held-out fold (evaluate): not logged as a model.
            model_uri = records.log_keras_model(run_id, model, plan.input_example)
            records.set_tags(run_id, {"model_uri": model_uri})
            records.log_artifact(run_id, folder / contracts.WEIGHTS_FILE, folder="weights")
    if failed is not None:
        runs_of_sweep.fail(tower.name, f"its group failed: {failed}")
    elif diverged is None:
        runs_of_sweep.finish(tower.name)
    else:
        runs_of_sweep.fail(
            tower.name, f"diverged at epoch {diverged}: the loss became NaN or infinite"
        )
    if stored is None and failed is None:
        trained_by = {"run_id": run_id, "model_uri": model_uri}
        # Under the key of where its bits were made: a worker's or Ray node's environment.
        made = as_trained_on(lookup.ingredients[tower.name], history.environments[tower.name])
        store.put(
            digest_of(made),
            StoredModel(model.get_weights(), history_bytes, diverged, trained_by, made),
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

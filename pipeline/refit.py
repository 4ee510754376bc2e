"""Stage `refit`: the decision, and with `choose.folds` the chosen entry trained once more on
every training and validation row, with that model's test error and its 95% interval: the
lab's answer.

The decision is made here, once, because this stage runs first (pipeline/choosing/decision.py:
on the validation errors and predictions, or with folds on the mean CV errors and pooled
held-out predictions); it goes to `<out>/decision.json`, which the report renders. Like
`GridSearchCV(refit=True)`: the folds choose, then one model of the chosen entry is trained on
all the pooled rows (the share `data.label_noise` of their labels flipped, as training rows
always are) and scored on the test split: the only use of the test split in choosing. Writes
`<out>/model.keras` and `<out>/refit.json`; its MLflow run is tagged `refit`, under the
sweep's parent run. Without folds there is nothing to refit: `refit.json` says so and the
decision keeps the chosen entry's own test error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

from pipeline.config import BuilderRef, load_config, resolve_entries
from pipeline.core import contracts, stable_bytes
from pipeline.core.errors import LabError
from pipeline.core.files import publish_dir, staging_dir
from pipeline.core.runner import run_stage, stop_if_interrupted
from pipeline.core.task import task_named

log = logging.getLogger(__name__)


def decide(config, models_dir: Path, metrics_dir: Path, details_dir: Path, meta):
    """The decision over the sweep (None: no candidate, every entry diverged), and the
    entries it chose among."""
    # Here, not at the top: SciPy costs a second, and a refit imports TensorFlow after it.
    from pipeline import choosing
    from pipeline.reporting import readers, table

    record = contracts.read_sweep_record(models_dir)
    entries = resolve_entries(config, record)
    task = task_named(meta.task)
    sweep = table.sweep_table(entries, metrics_dir, details_dir, task)
    folds = config.choose.folds
    judge = readers.read_judge(details_dir, cross_validated=bool(folds))
    rule, seed, test_rows = config.choose.rule, config.base.seed, meta.rows["test"]
    intervals = readers.read_test_intervals(details_dir, [e.name for e in entries])
    found = choosing.decide(
        entries, sweep, judge, rule=rule, seed=seed, test_rows=test_rows, folds=folds,
        task=task, test_intervals=intervals,
    )  # fmt: skip
    return found, entries


def refit(
    params: Path, prepared_dir: Path, models_dir: Path, metrics_dir: Path, details_dir: Path,
    out_dir: Path,
) -> None:  # fmt: skip
    config = load_config(params)
    meta = contracts.read_meta(prepared_dir)
    decision, entries = decide(config, models_dir, metrics_dir, details_dir, meta)
    if not config.choose.folds:
        staging = staging_dir(out_dir)
        contracts.write_json(staging / contracts.REFIT_FILE, {"refit": 0})
        contracts.write_decision(staging, decision.to_json() if decision else None)
        publish_dir(staging, out_dir)
        log.info("choose.folds is null: nothing to refit -> %s", out_dir / contracts.REFIT_FILE)
        return
    if decision is None:
        raise contracts.DataError("every entry diverged on some fold: nothing to refit")
    entry = next(e for e in entries if e.name == decision.chosen.name)

    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(config.base.seed)
    from pipeline.modeling.regularize import saved_as_plain_network
    from pipeline.tracking import runs, store

    # The latest execution of `train` that made these models holds the refit run.
    found = next(iter(runs.sweeps_of_models(models_dir, store.connect())), None)
    log.info(
        "refit %s (chosen by %s) on %d rows, %d epochs", entry.name, decision.choice.rule,
        pooled_rows(meta), config.train.epochs,
    )  # fmt: skip
    staging = staging_dir(out_dir)
    # No sweep run in this store (models restored from another): refit without MLflow.
    with runs.refit_run(found, entry.name) if found else contextlib.nullcontext() as run_id:
        model, seconds = train_on_pooled_rows(config, entry, meta, prepared_dir, params, run_id)
        result = score_on_test(model, entry, decision, meta, prepared_dir, config.base.seed)
        with saved_as_plain_network(model):
            stable_bytes.save_keras_model(model, staging / contracts.MODEL_FILE)
        contracts.write_json(staging / contracts.REFIT_FILE, result)
        answer = refit_answer(result, decision.test_figure)
        contracts.write_decision(staging, decision.with_refit(answer).to_json())
        if run_id is not None:
            log_refit_run(run_id, entry, result, seconds)
        stop_if_interrupted()  # the run ends KILLED, and nothing is published
    publish_dir(staging, out_dir)
    figure = task_named(meta.task).test_figure
    log.info(
        "refit %s: %s %.4g, 95%% interval [%.4g, %.4g] (%d test rows) -> %s",
        entry.name, figure.replace("_", " "), result[figure], result[f"{figure}_ci_low"],
        result[f"{figure}_ci_high"], result["test_rows"], out_dir,
    )  # fmt: skip


def pooled_rows(meta: contracts.PreparedMeta) -> int:
    return sum(meta.rows[name] for name in ("train", "val"))


def train_on_pooled_rows(config, entry, meta, prepared_dir: Path, params: Path, run_id):
    """The chosen entry's model trained as a group of one, as `train` trains its towers, on
    every pooled row, or taken from the model store when it holds it; returns the model and
    its training seconds (0 when reused)."""
    from pipeline.compute import REFIT, refit_group, run_group_into
    from pipeline.compute.work import build_group_models
    from pipeline.model_store import (
        Fingerprint,
        ModelStore,
        StoredModel,
        forced_retrain,
        ingredients,
        store_location,
    )
    from pipeline.model_store.key import as_trained_on, digest_of

    builder = BuilderRef.of_params(config.model, params)
    task = refit_group(config, entry, meta, prepared_dir, builder)
    (model,) = build_group_models(task)
    wanted = ingredients(
        Fingerprint.of(config, prepared_dir, builder), config, entry, config.base.seed, REFIT
    )
    key, store = digest_of(wanted), ModelStore(store_location())
    stored = None if forced_retrain() else store.get(key)
    if stored is not None:
        model.set_weights(stored.weights)
        log.info("refit %s: the model store holds it (trained by run %s); not trained again",
                 entry.name, stored.trained_by.get("run_id"))  # fmt: skip
        if run_id is not None:
            tag_reused_refit(run_id, stored)
        store.close(keep={key})
        return model, 0.0
    trained = run_group_into(
        task, config.compute, lambda *_: stop_if_interrupted(), {model.name: model}
    )
    if trained.diverged_at_epoch:
        raise LabError(
            f"refit of {entry.name!r}: the loss became NaN or infinite at epoch "
            f"{trained.diverged_at_epoch[model.name]}; lower train.learning_rate or the "
            f"entry's L2 rate"
        )
    trained_by = {"run_id": run_id, "model_uri": None}
    # Under the key of where its bits were made (a worker's or Ray node's environment).
    made = as_trained_on(wanted, trained.environment)
    store.put(digest_of(made), StoredModel(model.get_weights(), b"", None, trained_by, made))
    store.close(keep={key})
    return model, trained.seconds


def tag_reused_refit(run_id: str, stored) -> None:
    from pipeline.tracking import records

    records.set_tags(
        run_id, {"reused": "true", "reused_from_run": stored.trained_by.get("run_id") or ""}
    )


def score_on_test(model, entry, decision, meta, prepared_dir: Path, seed: int) -> dict:
    """refit.json: the refit model's test figure and its 95% interval, rounded: the error with
    Wilson's interval, or the RMSE (target units) with a percentile bootstrap over the test
    rows seeded by `seed`."""
    from pipeline.choosing.statistics import error_interval, rmse_interval
    from pipeline.datasets import prepared
    from pipeline.modeling.metrics import predicted_values, split_metrics

    test = prepared.read_split(prepared_dir, "test")
    n = len(test.labels)
    if meta.is_regression:
        targets = meta.in_target_units(test.labels.astype("float64"))
        squared = (predicted_values(model, test, meta) - targets) ** 2
        value, (low, high) = float(squared.mean() ** 0.5), rmse_interval(squared, seed)
    else:
        value, _ = split_metrics(model, test)
        low, high = error_interval(round(value * n), n)
    figure = task_named(meta.task).test_figure
    return {
        "entry": entry.name,
        "rule": decision.choice.rule,
        "train_rows": pooled_rows(meta),
        "test_rows": n,
        figure: contracts.rounded(value),
        f"{figure}_ci_low": contracts.rounded(low),
        f"{figure}_ci_high": contracts.rounded(high),
    }


def refit_answer(result: dict, figure: str):
    """The decision's answer from refit.json's rounded figures (`figure`: the task's test
    figure): the pages quote the same."""
    from pipeline import choosing

    return choosing.Refit(
        train_rows=result["train_rows"],
        test_rows=result["test_rows"],
        test_value=result[figure],
        test_ci_low=result[f"{figure}_ci_low"],
        test_ci_high=result[f"{figure}_ci_high"],
    )


def log_refit_run(run_id: str, entry, result: dict, seconds: float) -> None:
    from pipeline.tracking import records

    logged = {"entry": entry.name, "l2_rate": dict(entry.layer_rates)}
    logged |= {"weight_decay": entry.weight_decay, "train_rows": result["train_rows"]}
    records.log_params(run_id, logged)
    figures = {k: v for k, v in result.items() if k.startswith("test_")}
    records.log_metrics(run_id, figures | {"fit_seconds": seconds})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--details", type=Path, default=Path("evaluation"))
    parser.add_argument("--out", type=Path, default=Path("refit"))
    args = parser.parse_args(argv)
    run_stage(
        "refit",
        lambda: refit(
            args.params, args.prepared, args.models, args.metrics, args.details, args.out
        ),
        outputs=[args.out],
    )


if __name__ == "__main__":
    main()

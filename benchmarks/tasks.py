"""What the benchmark measures inside a fresh process, one task per call.

`python -m benchmarks.tasks <task> --result FILE ...` writes one JSON object to FILE. Each task
runs in its own process, so TensorFlow's state and import costs are those of a pipeline stage,
never left over from an earlier measurement. The pipeline's workers take explicit inputs and
return results, so the tasks call them as they are: nothing is replaced. The `stage` task only
wraps `pipeline.tracking`'s own functions with a clock; MLflow itself runs untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.core.task import CLASSIFICATION_TASK


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- fits: pure training, each entry alone vs all entries fused ----------------------------


@contextlib.contextmanager
def jit_compiled(enabled: bool) -> Iterator[None]:
    """Every `keras.Model.compile` in the block with `jit_compile=True` (XLA).

    Both the reference `train_alone` and `towers.fit_towers` compile with Keras's default,
    which on a CPU-only machine means no XLA; this tries the alternative without changing them.
    """
    import keras

    if not enabled:
        yield
        return
    original = keras.Model.compile

    def compile_with_xla(self, *args, **kwargs):
        kwargs["jit_compile"] = True
        return original(self, *args, **kwargs)

    keras.Model.compile = compile_with_xla
    try:
        yield
    finally:
        keras.Model.compile = original


def fits_task(args: argparse.Namespace) -> dict:
    """The sweep's models trained one after another alone (tests/support/reference.py, the
    reference every tower equals), then all at once as `train` trains them
    (`compute.run_groups` of `sweep_groups`' tasks, in this process), in one warm process
    (optionally again with XLA)."""
    from pipeline.config import BuilderRef, load_config
    from pipeline.core.runtime import init_tensorflow

    config = load_config(args.params)
    init_tensorflow(config.base.seed)
    import keras

    from pipeline.compute import run_groups, sweep_groups
    from pipeline.compute.sweep_plan import build_models, plan_sweep
    from pipeline.compute.work import group_splits
    from tests.support.reference import max_weight_difference, train_alone

    builder = BuilderRef.of_params(config.model, args.params)
    plan = plan_sweep(config, args.prepared, builder)
    towers, shape, n_classes = plan.towers, plan.meta.input_shape, plan.meta.n_classes
    tasks = sweep_groups(config, towers, plan.meta, plan.prepared_dir, builder)
    splits_of = {}  # each group's training set read once, for all its models
    for task in tasks:
        splits_of.update(dict.fromkeys(task.names, group_splits(task)))

    def alone(tower) -> tuple[keras.Model, float]:
        (model,) = build_models(builder, [tower], shape, n_classes, task=CLASSIFICATION_TASK)
        train, val = splits_of[tower.name]
        seconds = train_alone(
            model,
            train,
            val,
            config.train,
            seed=tower.seed,
            weight_decay=tower.entry.weight_decay,
            task=CLASSIFICATION_TASK,
        )
        return model, seconds

    def fused() -> tuple[list[keras.Model], float]:
        models = build_models(builder, towers, shape, n_classes, task=CLASSIFICATION_TASK)
        by_name = {model.name: model for model in models}
        in_process = config.compute.model_copy(update={"workers": 0})  # one warm process
        return models, run_groups(tasks, in_process, lambda *_: None, by_name).seconds

    # Warm-up: TensorFlow's runtime, thread pools and first tracing are paid here, not below.
    warm = towers[0]
    (model,) = build_models(builder, [warm], shape, n_classes, task=CLASSIFICATION_TASK)
    warm_settings = config.train.model_copy(update={"epochs": 2})
    train_alone(
        model,
        *splits_of[warm.name],
        warm_settings,
        seed=warm.seed,
        entry="warm-up",
        task=CLASSIFICATION_TASK,
    )

    result: dict = {"towers": [t.name for t in towers], "epochs": config.train.epochs}
    for jit in [False, True] if args.jit else [False]:
        key = "xla" if jit else "default"
        try:
            with jit_compiled(jit):
                alone_runs = [alone(t) for t in towers]
                fused_models, fused_s = fused()
        except Exception as error:  # XLA may refuse an op; the default path must not
            if not jit:
                raise
            result[key] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
            continue
        result[key] = {
            "alone_s": {t.name: s for t, (_, s) in zip(towers, alone_runs, strict=True)},
            "alone_total_s": sum(s for _, s in alone_runs),
            "fused_s": fused_s,
            # The fused sweep is exact: 0.0 unless XLA reorders arithmetic.
            "max_weight_difference": max(
                max_weight_difference(f, a)
                for f, (a, _) in zip(fused_models, alone_runs, strict=True)
            ),
        }
    return result


# -- stage: the `train` stage body, its MLflow calls timed -----------------------------------


class Clock:
    """Accumulates the wall time spent inside timed calls; a call inside another counts once."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.by_name: dict[str, float] = {}
        self._depth = 0

    @contextlib.contextmanager
    def timing(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            seconds = time.perf_counter() - started
            if self._depth == 0:
                self.seconds += seconds
                self.calls += 1
                self.by_name[name] = self.by_name.get(name, 0.0) + seconds

    def wrap(self, function: Callable, name: str) -> Callable:
        def timed(*args, **kwargs):
            with self.timing(name):
                return function(*args, **kwargs)

        return timed


def time_tracking(clock: Clock, seen_metrics: dict) -> None:
    """Route every `pipeline.tracking` call that `train` makes through `clock`.

    Module attributes are rebound, so `train`'s `records.log_params(...)` finds the timed
    version; `seen_metrics` collects what goes to `records.log_metrics` (e.g. fit_seconds).
    """
    from pipeline.tracking import records, runs, store

    store.use_experiment = clock.wrap(store.use_experiment, "use_experiment")
    store.tracking_uri = clock.wrap(store.tracking_uri, "tracking_uri")
    for name in ("log_params", "log_artifact", "log_keras_model", "set_tags"):
        setattr(records, name, clock.wrap(getattr(records, name), name))
    log_metrics = clock.wrap(records.log_metrics, "log_metrics")

    def recording_log_metrics(run_id, metrics, *args, **kwargs):
        seen_metrics.update(metrics)
        return log_metrics(run_id, metrics, *args, **kwargs)

    records.log_metrics = recording_log_metrics
    runs.SweepRuns.finish = clock.wrap(runs.SweepRuns.finish, "end_run")
    runs.SweepRuns.fail = clock.wrap(runs.SweepRuns.fail, "end_run")

    sweep_runs = runs.sweep_runs

    @contextlib.contextmanager
    def timed_sweep_runs(*args, **kwargs):
        context = sweep_runs(*args, **kwargs)
        with clock.timing("create_runs"):
            sweep = context.__enter__()
        try:
            yield sweep
        except BaseException as error:
            with clock.timing("end_runs"):
                if not context.__exit__(type(error), error, error.__traceback__):
                    raise
        else:
            with clock.timing("end_runs"):
                context.__exit__(None, None, None)

    runs.sweep_runs = timed_sweep_runs
    base = records.EpochMetricsLogger

    class TimedEpochMetricsLogger(base):
        def __init__(self, *args, **kwargs):
            with clock.timing("epoch_metrics"):
                super().__init__(*args, **kwargs)

        def __call__(self, *args, **kwargs):
            with clock.timing("epoch_metrics"):
                super().__call__(*args, **kwargs)

        def flush(self):
            with clock.timing("epoch_metrics"):
                super().flush()

    records.EpochMetricsLogger = TimedEpochMetricsLogger


def stage_task(args: argparse.Namespace) -> dict:
    """`pipeline.train.train` as the `train` stage runs it, every MLflow call timed."""
    started = time.perf_counter()
    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(0)  # train() calls it again with the sweep's seed: this pays the import
    import keras  # noqa: F401

    tensorflow_import_s = time.perf_counter() - started
    started = time.perf_counter()
    import pipeline.tracking.records
    import pipeline.tracking.runs
    import pipeline.tracking.store  # noqa: F401  (import mlflow)

    mlflow_import_s = time.perf_counter() - started
    # A project creates its store once (the sqlite schema, the experiment) and then trains
    # sweep after sweep into it: that once is timed apart from the sweep's own calls.
    from pipeline.config import load_config
    from pipeline.tracking import store

    started = time.perf_counter()
    store.use_experiment(load_config(args.params).base.experiment)
    store_setup_s = time.perf_counter() - started
    clock = Clock()
    seen: dict = {}
    time_tracking(clock, seen)
    from pipeline.train import train

    started = time.perf_counter()
    train(args.params, args.prepared, args.out)
    return {
        "run_s": time.perf_counter() - started,
        "tensorflow_import_s": tensorflow_import_s,
        "mlflow_import_s": mlflow_import_s,
        "store_setup_s": store_setup_s,
        "tracking_s": clock.seconds,
        "tracking_calls": clock.calls,
        "tracking_s_by_call": clock.by_name,
        "fit_s": seen.get("fit_seconds"),
        "models": len(json.loads((args.out / "sweep.json").read_text())["towers"]),
    }


def imports_task(args: argparse.Namespace) -> dict:
    """A process that only imports TensorFlow: the memory floor of any training process."""
    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(0)
    import keras  # noqa: F401

    return {}


TASKS = {"fits": fits_task, "stage": stage_task, "imports": imports_task}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--result", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--params", type=Path)
    parser.add_argument("--prepared", type=Path)
    parser.add_argument("--out", type=Path, help="models folder for the stage task")
    parser.add_argument("--jit", action="store_true", help="fits: also with jit_compile=True")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format=f"[{args.task}] %(message)s")
    result = TASKS[args.task](args)
    result["peak_rss_mib"] = peak_rss_mib()
    args.result.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What the benchmark measures inside a fresh process, one task per call.

`python -m benchmarks.tasks <task> --result FILE ...` writes one JSON object to FILE. Each
task runs in its own process so that TensorFlow's state, seeds and import costs are those of
a pipeline stage, never left over from an earlier measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def train_task(args: argparse.Namespace) -> dict:
    """One sweep entry trained by the pipeline's `training.fit` or by a plain `model.fit`."""
    from pipeline.config import load_config
    from pipeline.runtime import init_tensorflow

    config = load_config(args.params)
    init_tensorflow(args.seed)
    import keras

    from pipeline import data, model, training
    from pipeline.metrics import split_metrics

    train, val = (data.read_split(args.prepared, s) for s in ("train", "val"))
    meta = data.read_meta(args.prepared)
    net = model.build_mlp(
        meta["n_features"],
        len(meta["class_names"]),
        config.model.hidden_units,
        config.model.activation,
        config.layer_rates(args.entry),
    )
    epochs = config.train.epochs
    started = time.perf_counter()
    if args.mode == "plain":
        # What a user writes by hand: numpy arrays, batch_size=32, Keras's own validation.
        net.compile(
            optimizer=keras.optimizers.Adam(learning_rate=config.train.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        net.fit(
            train.features,
            train.labels,
            batch_size=32,
            epochs=epochs,
            validation_data=(val.features, val.labels),
            verbose=0,
        )
    else:
        training.fit(
            net,
            train,
            val,
            entry=args.entry,
            learning_rate=config.train.learning_rate,
            batch_size=config.train.batch_size,
            epochs=epochs,
            seed=args.seed,
            sinks=[],
        )
    seconds = time.perf_counter() - started
    val_error, _ = split_metrics(net, val)
    return {
        "mode": args.mode,
        "seed": args.seed,
        "epochs": epochs,
        "n_train": len(train.labels),
        "n_val": len(val.labels),
        "fit_seconds": seconds,
        "samples_per_s": len(train.labels) * epochs / seconds,
        "val_error": val_error,
        "dense_shapes": [list(layer.kernel.shape) for layer in model.dense_layers(net)],
    }


def matmul_task(args: argparse.Namespace) -> dict:
    """This machine's float32 matrix-multiply throughput: the compute bound's denominator."""
    from pipeline.runtime import init_tensorflow

    init_tensorflow(0)
    import tensorflow as tf

    results = {}
    for m, k, n, count in ((1024, 1024, 1024, 20), (32, 256, 256, 2000)):
        a = tf.random.uniform((m, k))
        b = tf.random.uniform((k, n))

        @tf.function
        def repeat(a, b, count=count):
            total = tf.zeros((a.shape[0], b.shape[1]))
            for _ in tf.range(count):
                total += tf.matmul(a, b)
            return total

        repeat(a, b).numpy()  # trace and warm up
        timings = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            repeat(a, b).numpy()
            timings.append(time.perf_counter() - started)
        best = sorted(timings)[len(timings) // 2]
        results[f"{m}x{k}x{n}"] = 2 * m * k * n * count / best
    return {"flops_per_s": results}


def imports_task(args: argparse.Namespace) -> dict:
    """What a train/evaluate stage pays before doing anything: TensorFlow and MLflow imports."""
    started = time.perf_counter()
    from pipeline.runtime import init_tensorflow

    init_tensorflow(0)
    import keras  # noqa: F401

    tensorflow_s = time.perf_counter() - started
    tensorflow_rss = _peak_rss_mib()
    started = time.perf_counter()
    import pipeline.tracking  # noqa: F401  (imports mlflow)

    return {
        "tensorflow_s": tensorflow_s,
        "mlflow_s": time.perf_counter() - started,
        "tensorflow_peak_rss_mib": tensorflow_rss,
    }


class _Clock:
    """Accumulates the wall time spent inside wrapped calls."""

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
            # A timed call inside another (use_experiment within start_run) counts once.
            if self._depth == 0:
                self.seconds += seconds
                self.calls += 1
            self.by_name[name] = self.by_name.get(name, 0.0) + seconds

    def wrap(self, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self.timing(function.__name__):
                return function(*args, **kwargs)

        return timed


def _time_tracking(tracking: types.ModuleType, clock: _Clock) -> None:
    """Route every call that `pipeline.train` makes into `tracking` through `clock`."""
    for name in (
        "use_experiment",
        "log_params",
        "log_metrics",
        "log_artifact",
        "log_keras_model",
        "write_run_file",
    ):
        setattr(tracking, name, clock.wrap(getattr(tracking, name)))

    entry_run = tracking.entry_run

    @contextlib.contextmanager
    def timed_entry_run(*args, **kwargs):
        context = entry_run(*args, **kwargs)
        with clock.timing("start_run"):
            run_id = context.__enter__()
        try:
            yield run_id
        except BaseException:
            with clock.timing("end_run"):
                if not context.__exit__(*sys.exc_info()):
                    raise
        else:
            with clock.timing("end_run"):
                context.__exit__(None, None, None)

    tracking.entry_run = timed_entry_run
    base = tracking.EpochMetricsLogger

    class TimedEpochMetricsLogger(base):
        def __init__(self, *args, **kwargs):
            with clock.timing("epoch_logger"):
                super().__init__(*args, **kwargs)

        def __call__(self, *args, **kwargs):
            with clock.timing("epoch_logger"):
                super().__call__(*args, **kwargs)

        def flush(self):
            with clock.timing("epoch_logger"):
                super().flush()

    tracking.EpochMetricsLogger = TimedEpochMetricsLogger


def _no_tracking() -> types.ModuleType:
    """A stand-in for `pipeline.tracking` that records nothing and never imports mlflow."""
    fake = types.ModuleType("pipeline.tracking")

    @contextlib.contextmanager
    def entry_run(
        experiment: str, entry: str, extra_tags: dict[str, str] | None = None
    ) -> Iterator[str]:
        yield "no-run"

    class EpochMetricsLogger:
        def __init__(self, run_id: str):
            pass

        def __call__(self, epoch: int, metrics: dict) -> None:
            pass

        def flush(self) -> None:
            pass

    def write_run_file(folder: Path, run_id: str, model_uri: str) -> None:
        (folder / "run.json").write_text(json.dumps({"run_id": run_id}) + "\n")

    fake.entry_run = entry_run
    fake.EpochMetricsLogger = EpochMetricsLogger
    fake.write_run_file = write_run_file
    for name in ("log_params", "log_metrics", "log_artifact"):
        setattr(fake, name, lambda *a, **k: None)
    fake.log_keras_model = lambda *a, **k: "none"
    fake.use_experiment = lambda *a, **k: "none"
    return fake


def stage_task(args: argparse.Namespace) -> dict:
    """The `train@<entry>` stage body, with MLflow timed call by call, or with no MLflow."""
    import pipeline

    clock = _Clock()
    mlflow_import_s = 0.0
    if args.store == "none":
        fake = _no_tracking()
        sys.modules["pipeline.tracking"] = fake
        pipeline.tracking = fake
    else:
        started = time.perf_counter()
        import pipeline.tracking as tracking

        mlflow_import_s = time.perf_counter() - started
        _time_tracking(tracking, clock)

    from pipeline import train

    fit_seconds: list[float] = []
    from pipeline import training

    real_fit = training.fit

    def recording_fit(*a, **k):
        seconds = real_fit(*a, **k)
        fit_seconds.append(seconds)
        return seconds

    training.fit = recording_fit
    started = time.perf_counter()
    train.train(args.params, args.entry, args.prepared, args.out)
    return {
        "store": args.store,
        "run_s": time.perf_counter() - started,
        "mlflow_import_s": mlflow_import_s,
        "tracking_s": clock.seconds,
        "tracking_calls": clock.calls,
        "tracking_s_by_call": clock.by_name,
        "fit_s": fit_seconds[0],
    }


TASKS = {"train": train_task, "matmul": matmul_task, "imports": imports_task, "stage": stage_task}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--result", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--params", type=Path)
    parser.add_argument("--prepared", type=Path)
    parser.add_argument("--entry")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--mode", choices=["plain", "pipeline"], default="pipeline")
    parser.add_argument("--store", choices=["none", "sqlite", "http"], default="sqlite")
    parser.add_argument("--out", type=Path, help="model folder for the stage task")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = TASKS[args.task](args)
    result["peak_rss_mib"] = _peak_rss_mib()
    args.result.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

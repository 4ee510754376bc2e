"""What goes into a run: flattened params, per-epoch metrics in batches, final metrics,
files, figures and the Keras model."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

_MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch call
_MAX_PARAMS_PER_BATCH = 100


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as MLflow params: `model.hidden_units` -> "[256, 256]"."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return flat


def log_params(run_id: str, params: Mapping[str, Any]) -> None:
    items = [Param(k, v) for k, v in flatten(params).items()]
    client = MlflowClient()
    for start in range(0, len(items), _MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + _MAX_PARAMS_PER_BATCH])


def log_metrics(run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    timestamp = int(time.time() * 1000)
    batch = [Metric(k, float(v), timestamp, step) for k, v in metrics.items()]
    MlflowClient().log_batch(run_id, metrics=batch)


def set_tags(run_id: str, tags: Mapping[str, str]) -> None:
    MlflowClient().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_results(
    run_id: str, metrics: Mapping[str, float], params: Mapping[str, str], tags: Mapping[str, str]
) -> None:
    """Final metrics, params and tags of a run in one store call (one request to a server)."""
    timestamp = int(time.time() * 1000)
    MlflowClient().log_batch(
        run_id,
        metrics=[Metric(k, float(v), timestamp, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )


def log_artifact(run_id: str, path: Path, folder: str | None = None) -> None:
    MlflowClient().log_artifact(run_id, str(path), artifact_path=folder)


class EpochMetricsLogger:
    """An epoch sink for many runs: every tower's `epoch_*` metrics, sent in batches.

    One store write every few seconds for the whole sweep, so the UI's charts fill in while
    training runs without MLflow costing a call per epoch per model. The writes run on a
    thread of their own, one after the other: TensorFlow's steps release the GIL, so the
    store's SQL overlaps the training instead of pausing it (about 1.7 s of the default
    sweep's `train`). `flush()` returns once everything is written, and raises what a write
    raised.
    """

    def __init__(self, run_ids: Mapping[str, str], flush_every_s: float = 5.0):
        self.run_ids = dict(run_ids)
        self.flush_every_s = flush_every_s
        self.pending: dict[str, list[Metric]] = {}
        self.last_flush = time.monotonic()
        self.client = MlflowClient()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="epoch-metrics")
        self._writing: Future | None = None

    def __call__(self, epoch: int, per_tower: Mapping[str, Mapping[str, float]]) -> None:
        timestamp = int(time.time() * 1000)
        for tower, metrics in per_tower.items():
            self.pending.setdefault(self.run_ids[tower], []).extend(
                Metric(f"epoch_{name}", float(value), timestamp, epoch)
                for name, value in metrics.items()
            )
        if time.monotonic() - self.last_flush >= self.flush_every_s:
            self._send()

    def _send(self) -> None:
        batch, self.pending = self.pending, {}
        self._written()  # the previous write's error surfaces here, in the stage's thread
        self._writing = self._writer.submit(self._write, batch)
        self.last_flush = time.monotonic()

    def _write(self, batch: Mapping[str, list[Metric]]) -> None:
        for run_id, metrics in batch.items():
            for start in range(0, len(metrics), _MAX_METRICS_PER_BATCH):
                self.client.log_batch(
                    run_id, metrics=metrics[start : start + _MAX_METRICS_PER_BATCH]
                )

    def _written(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()

    def flush(self) -> None:
        self._send()
        self._written()


def log_keras_model(run_id: str, model: Any, example_features: Any) -> str:
    """Log `model` into run `run_id` with MLflow's Keras flavor and a signature; returns its
    model URI."""
    import keras
    import mlflow.keras
    import tensorflow as tf
    from mlflow.models import infer_signature

    signature = infer_signature(
        example_features, keras.ops.convert_to_numpy(model(example_features))
    )
    # The flavor logs into the active run; opening it here does not change its status.
    with mlflow.start_run(run_id=run_id):
        info = mlflow.keras.log_model(
            model,
            name="model",
            signature=signature,
            # Given explicitly: inferring them imports the model in a subprocess (~25 s).
            # No input_example: it crashes this flavor (mlflow/mlflow#16183).
            pip_requirements=[f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"],
        )
    return info.model_uri

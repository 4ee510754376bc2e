"""Everything MLflow: where the store is, one run per sweep entry, and what goes into it.

This is the only module that imports mlflow. The store is MLflow's own local one at the
project root (`mlflow.db` + `mlartifacts/`) unless `MLFLOW_TRACKING_URI` says otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.errors import TrackingError

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
_MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch call
REACHABILITY_TIMEOUT_S = 5.0
# MLflow's own defaults (7 retries with exponential back-off, 120 s per request) turn a
# server that is down into minutes of silence; a user's own settings still win.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def project_root() -> Path:
    """The repository the user works in, also from inside a queued `dvc exp run`.

    DVC runs queued experiments in a temporary copy but points DVC_ROOT at the original
    repository: runs logged to a store inside the copy would vanish with it.
    """
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri(root: Path) -> str:
    """`MLFLOW_TRACKING_URI` with relative local paths anchored at `root`, else the default."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        return f"sqlite:///{root / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{root / uri.removeprefix('sqlite:///')}"
    if "://" not in uri:
        return str(root / uri)
    return uri


def _uses_default_store() -> bool:
    return not os.environ.get("MLFLOW_TRACKING_URI", "").strip()


def check_reachable(uri: str, timeout_s: float = REACHABILITY_TIMEOUT_S) -> None:
    """Fail in seconds, naming `uri`, if an HTTP tracking server does not answer at all."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return  # something answers; MLflow itself says so if it is not a tracking server
    except (OSError, ValueError) as exc:  # URLError, refused, timed out, bad host
        reason = getattr(exc, "reason", None) or exc or type(exc).__name__
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({reason}); start it, or point "
            f"MLFLOW_TRACKING_URI at a running server (unset it for the local store)"
        ) from None


@contextlib.contextmanager
def _store_creation_lock(uri: str) -> Iterator[None]:
    """Serialise the first use of a SQLite store between processes.

    Parallel `dvc queue` workers that open a new `mlflow.db` at the same moment would
    both create its schema, and one of them fails. A lock file beside the database
    lets the first create it while the others wait.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def connect(root: Path | None = None) -> str:
    """Point MLflow at the store, failing fast if it is a server that does not answer."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    uri = tracking_uri(root or project_root())
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def use_experiment(name: str) -> str:
    """Point MLflow at the store and return the id of experiment `name`, creating it if new."""
    root = project_root()
    # Asked before connecting: mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI.
    default_store = _uses_default_store()
    uri = connect(root)
    try:
        with _store_creation_lock(uri):
            client = MlflowClient()
            experiment = client.get_experiment_by_name(name)
            if experiment is not None:
                return experiment.experiment_id
            # With the default store the artifacts sit beside mlflow.db; a server decides.
            location = (root / "mlartifacts").as_uri() if default_store else None
            try:
                return client.create_experiment(name, artifact_location=location)
            except MlflowException:
                # Another process (a parallel `dvc queue` worker on a server) was first.
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                return experiment.experiment_id
    except MlflowException as exc:
        raise TrackingError(
            f"MLflow store {uri} is not usable ({_one_line(exc)}); check MLFLOW_TRACKING_URI"
        ) from None


def run_tags(entry: str, root: Path) -> dict[str, str]:
    tags = {"entry": entry, "git_commit": _git_commit(root)}
    for env, tag in (("DVC_STAGE", "dvc_stage"), ("DVC_EXP_NAME", "dvc_exp_name")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def _git_commit(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _ended_with_status(run_id: str) -> Iterator[None]:
    """End the active run FINISHED, KILLED (Ctrl-C, SIGTERM) or FAILED with the reason.

    A run is never left RUNNING: ending it is best effort when the store itself failed,
    so the original error is the one the user sees.
    """
    try:
        yield
    except BaseException as exc:
        killed = isinstance(exc, KeyboardInterrupt)  # SIGTERM arrives as one too (cli.py)
        status = RunStatus.to_string(RunStatus.KILLED if killed else RunStatus.FAILED)
        reason = _one_line(exc)
        try:
            client = MlflowClient()
            client.set_tag(run_id, "failure_reason", reason)
            client.set_tag(run_id, "mlflow.note.content", f"{status}: {reason}")
            mlflow.end_run(status)
        except Exception as end_error:
            log.warning("could not mark MLflow run %s %s: %s", run_id, status, _one_line(end_error))
        if isinstance(exc, MlflowException):
            raise TrackingError(
                f"MLflow store {mlflow.get_tracking_uri()} failed during run {run_id}: {reason}"
            ) from None
        raise
    else:
        mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


@contextlib.contextmanager
def entry_run(
    experiment: str, entry: str, extra_tags: Mapping[str, str] | None = None
) -> Iterator[str]:
    """A new run named after the sweep entry; yields its id.

    Ends FINISHED, or FAILED with tag `failure_reason` if the block raises, or KILLED if
    the stage is interrupted.
    """
    experiment_id = use_experiment(experiment)
    tags = {**run_tags(entry, project_root()), **(extra_tags or {})}
    run = mlflow.start_run(experiment_id=experiment_id, run_name=entry, tags=tags)
    with _ended_with_status(run.info.run_id):
        yield run.info.run_id


@contextlib.contextmanager
def resumed_run(run_id: str) -> Iterator[str]:
    """Reopen the run that trained a model, to add its evaluation; ends as `entry_run`."""
    uri = connect()
    try:
        MlflowClient().get_run(run_id)
    except MlflowException:
        raise TrackingError(
            f"MLflow run {run_id} is not in the store {uri}; "
            f"retrain with `dvc repro --force` on the train stage"
        ) from None
    run = mlflow.start_run(run_id=run_id)
    with _ended_with_status(run_id):
        yield run.info.run_id


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


def log_params(params: Mapping[str, Any]) -> None:
    mlflow.log_params(flatten(params))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    mlflow.log_metrics(dict(metrics), step=step)


def log_artifact(path: Path, folder: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_path=folder)


class EpochMetricsLogger:
    """An epoch sink that sends metrics in batches: one store write per ~15 s, not per epoch."""

    def __init__(self, run_id: str, flush_every_s: float = 15.0):
        self.run_id = run_id
        self.flush_every_s = flush_every_s
        self.pending: list[Metric] = []
        self.last_flush = time.monotonic()
        self.client = MlflowClient()

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        timestamp = int(time.time() * 1000)
        self.pending.extend(
            Metric(f"epoch_{name}", float(value), timestamp, epoch)
            for name, value in metrics.items()
        )
        if time.monotonic() - self.last_flush >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        for start in range(0, len(self.pending), _MAX_METRICS_PER_BATCH):
            batch = self.pending[start : start + _MAX_METRICS_PER_BATCH]
            self.client.log_batch(self.run_id, metrics=batch)
        self.pending.clear()
        self.last_flush = time.monotonic()


def log_keras_model(model: Any, example_features: Any) -> str:
    """Log `model` with MLflow's Keras flavor and a signature; returns its model URI."""
    import keras
    import mlflow.keras
    import tensorflow as tf
    from mlflow.models import infer_signature

    signature = infer_signature(example_features, model(example_features).numpy())
    info = mlflow.keras.log_model(
        model,
        name="model",
        signature=signature,
        # Given explicitly: inferring them imports the model in a subprocess (~25 s).
        # No input_example: it crashes this flavor (mlflow/mlflow#16183).
        pip_requirements=[f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"],
    )
    return info.model_uri


def write_run_file(folder: Path, run_id: str, model_uri: str) -> None:
    payload = {"run_id": run_id, "model_uri": model_uri, "tracking_uri": mlflow.get_tracking_uri()}
    (folder / RUN_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def read_run_id(folder: Path) -> str:
    path = folder / RUN_FILE
    try:
        return json.loads(path.read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        raise TrackingError(f"{path}: missing or unreadable; rerun the train stage") from None


# --- The sweep's parent run (issue 3): one run per sweep that groups the entry runs. ---

PARENT_TAG = "mlflow.parentRunId"  # what the MLflow UI nests runs by
SWEEP_KEY_TAG = "sweep_key"


def sweep_key(entry_runs: Mapping[str, str]) -> str:
    """A fingerprint of a sweep: which run stands for which entry."""
    text = json.dumps(dict(sorted(entry_runs.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def sweep_run(experiment: str, entry_runs: Mapping[str, str]) -> Iterator[str]:
    """The parent run of the sweep made of `entry_runs` (entry -> run id); yields its id.

    Keyed by `sweep_key`: running the report again for the same entry runs reopens the same
    parent instead of adding another, so a rerun never duplicates a sweep in the UI.
    """
    experiment_id = use_experiment(experiment)
    key = sweep_key(entry_runs)
    found = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.{SWEEP_KEY_TAG} = '{key}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if found:
        run = mlflow.start_run(run_id=found[0].info.run_id)
    else:
        tags = {k: v for k, v in run_tags("sweep", project_root()).items() if k != "entry"}
        tags.update({SWEEP_KEY_TAG: key, "sweep": "parent"})
        name = f"sweep {tags['dvc_exp_name']}" if "dvc_exp_name" in tags else "sweep"
        run = mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags)
    # Ended like every entry run: KILLED on Ctrl-C, FAILED with the reason, never RUNNING.
    with _ended_with_status(run.info.run_id):
        yield run.info.run_id


def adopt_runs(parent_id: str, child_ids: Mapping[str, str]) -> list[str]:
    """Nest each entry's run (entry -> run id) under `parent_id`; returns entries whose run is
    not in the store (their stage was restored from a cache filled against another store)."""
    client = MlflowClient()
    missing = []
    for entry, run_id in child_ids.items():
        try:
            client.set_tag(run_id, PARENT_TAG, parent_id)
        except MlflowException:
            missing.append(entry)
    return missing


def log_figure(figure: Any, name: str) -> None:
    """A matplotlib figure as `plots/<name>.png` in the active run."""
    mlflow.log_figure(figure, f"plots/{name}.png")


def set_tags(tags: Mapping[str, str]) -> None:
    mlflow.set_tags(dict(tags))

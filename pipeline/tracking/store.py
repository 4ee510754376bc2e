"""Where runs go: the local store at the project root by default, or MLFLOW_TRACKING_URI.

The default store is `mlflow.db` plus `mlartifacts/` beside it. MLflow records absolute
artifact paths, so a copied or moved project is re-anchored to where it now is before
anything is written: nothing is ever written outside the project by default.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.core.errors import TrackingError
from pipeline.core.project_root import project_root

log = logging.getLogger(__name__)

REACHABILITY_TIMEOUT_S = 5.0
ARTIFACTS_DIR = "mlartifacts"
# MLflow's own defaults (7 retries with exponential back-off, 120 s per request) turn a
# server that is down into minutes of silence; a user's own settings still win.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def uses_default_store() -> bool:
    return not os.environ.get("MLFLOW_TRACKING_URI", "").strip()


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
def store_lock(uri: str) -> Iterator[None]:
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
    """Point MLflow at the store, failing fast if it is a server that does not answer.

    The default store of a copied or moved project is re-anchored first, so every stage
    (not only the one that creates runs) writes its artifacts inside the project.
    """
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    root = root or project_root()
    # Asked before set_tracking_uri, which exports MLFLOW_TRACKING_URI.
    default_store = uses_default_store()
    uri = tracking_uri(root)
    check_reachable(uri)
    if default_store:
        with store_lock(uri):
            reanchor_artifacts(Path(uri.removeprefix("sqlite:///")), root / ARTIFACTS_DIR)
    mlflow.set_tracking_uri(uri)
    return uri


def use_experiment(name: str) -> str:
    """Point MLflow at the store and return the id of experiment `name`, creating it if new."""
    root = project_root()
    # Asked before connecting: mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI.
    default_store = uses_default_store()
    uri = connect(root)
    try:
        with store_lock(uri):
            client = MlflowClient()
            experiment_id = _get_or_create_experiment(client, name, root, default_store)
    except MlflowException as exc:
        raise TrackingError(
            f"MLflow store {uri} is not usable ({one_line(exc)}); check MLFLOW_TRACKING_URI"
        ) from None
    return experiment_id


# MLflow's own tag for a model-training experiment. MLflow 3.17's UI does not yet choose its
# view by it (a new browser opens on the GenAI view until "Model training" is picked once),
# so the report also links to the runs table with `workflowType=machine_learning`.
EXPERIMENT_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")


def _get_or_create_experiment(
    client: MlflowClient, name: str, root: Path, default_store: bool
) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        # With the default store the artifacts sit beside mlflow.db; a server decides.
        location = (root / ARTIFACTS_DIR).as_uri() if default_store else None
        # Another process (a parallel `dvc queue` worker on a server) may be first.
        with contextlib.suppress(MlflowException):
            client.create_experiment(name, artifact_location=location)
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise MlflowException(f"experiment {name!r} could not be created")
    key, kind = EXPERIMENT_KIND_TAG
    if key not in experiment.tags:
        # Parallel `dvc queue` workers on a server may both see the tag missing; the second
        # write is refused (a duplicate key), and the tag is set either way.
        with contextlib.suppress(MlflowException):
            client.set_experiment_tag(experiment.experiment_id, key, kind)
    return experiment.experiment_id


# The tables of MLflow's SQL schema that hold absolute artifact locations: the tracking
# store's, and the model registry's (a version's `source` as registered, and
# `storage_location`, where `models:/<name>@<alias>` downloads it from).
_ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


def reanchor_artifacts(db: Path, artifacts: Path) -> int:
    """Point the default store's artifact locations at `artifacts` if the project moved.

    A copied project's `mlflow.db` still names the original folder's `mlartifacts/`: new
    artifacts would land there (or fail once it is gone). Rewrites every location under the
    old folder to the same place under `artifacts`; returns how many rows changed.
    """
    if not db.is_file():
        return 0
    new_prefix = artifacts.as_uri()
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if "experiments" not in tables:
            return 0
        old_prefixes = {
            location[: location.index(f"/{ARTIFACTS_DIR}") + len(ARTIFACTS_DIR) + 1]
            for (location,) in connection.execute("SELECT artifact_location FROM experiments")
            if location and location.startswith("file://") and f"/{ARTIFACTS_DIR}" in location
        } - {new_prefix}
        changed = 0
        for old_prefix in old_prefixes:
            for table, column in _ARTIFACT_COLUMNS:
                if table not in tables:
                    continue
                changed += connection.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE substr({column}, 1, ?) = ?",
                    (new_prefix, len(old_prefix) + 1, len(old_prefix), old_prefix),
                ).rowcount
    if changed:
        log.warning(
            "the project moved: re-anchored %d MLflow artifact locations to %s", changed, artifacts
        )
    return changed


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

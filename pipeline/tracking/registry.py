"""The chosen model in MLflow's Model Registry: one version per chosen model, found again by
its key, created with every tag at once, and the alias that marks the workspace's choice.

Through MLflow's client only (search_model_versions, create_model_version,
set_registered_model_alias), so the local store and a tracking server behave alike. A
version is created with its tags in one call (one SQL transaction, one request to a server),
so no version is ever seen half-tagged; its `source` is the packaged folder logged as an
artifact in this store, so `models:/<name>@<alias>` loads it also when DVC restored the
models without a new run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.tracking import MlflowClient

from pipeline.core.errors import TrackingError
from pipeline.tracking import runs, store

log = logging.getLogger(__name__)

# The version tag that holds the chosen model's key (model file, preparation, decision):
# registering the same chosen model again finds its version by it.
KEY_TAG = "chosen_key"
# The artifacts of a registered folder, under the run that holds them: one folder per key,
# so a second decision over the same models (another choose.rule) never overwrites the
# files an earlier version points at.
ARTIFACT_DIR = "chosen"


@dataclass(frozen=True)
class Registration:
    name: str
    version: int
    new: bool  # False: a version with this key was there already
    alias: str
    alias_version: int | None  # where the alias points after this registration


def register_folder(
    folder: Path,
    name: str,
    key: str,
    tags: Mapping[str, str],
    experiment: str,
    models_digest: str,
    *,
    description: str,
    alias: str,
    move_alias: bool,
) -> Registration:
    """The version of `name` whose KEY_TAG is `key`, created from `folder` with `tags` and
    `description` if there is none (its artifacts in a run of `experiment`: the sweep's that
    made the models of `models_digest` when there is one); the alias moved to it when
    `move_alias`. Raises TrackingError, one line, when the store is unreachable or refuses;
    nothing is created before the store answered."""
    experiment_id = store.use_experiment(experiment)  # fails fast on a server that is down
    uri = mlflow.get_tracking_uri()
    client = MlflowClient()
    try:
        # Parallel queued experiments on one local store: one creates the version, the
        # other finds it. (A server has no such lock; two versions of one key are then
        # possible, each complete, and the lowest number is the one reused.)
        with store.store_lock(uri):
            version, new = _version_of_key(client, name, key), False
            if version is None:
                made_by = (experiment_id, models_digest)
                version = _create_version(client, folder, name, key, tags, description, made_by)
                new = True
        if move_alias:
            client.set_registered_model_alias(name, alias, str(version))
        pointed = alias_version(client, name, alias)
    except MlflowException as exc:
        raise TrackingError(
            f"MLflow model registry at {uri} failed: {store.one_line(exc)}"
        ) from None
    return Registration(name, version, new, alias, pointed)


def _version_of_key(client: MlflowClient, name: str, key: str) -> int | None:
    found = client.search_model_versions(f"name = '{name}' and tags.{KEY_TAG} = '{key}'")
    return min((int(v.version) for v in found), default=None)


def _create_version(
    client: MlflowClient,
    folder: Path,
    name: str,
    key: str,
    tags: Mapping[str, str],
    description: str,
    made_by: tuple[str, str],
) -> int:
    try:
        client.create_registered_model(name, description=DESCRIPTION)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    with _artifact_run(client, *made_by, tags) as run:
        path = f"{ARTIFACT_DIR}/{key[:16]}"
        client.log_artifacts(run.info.run_id, str(folder), path)
        created = client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/{path}",
            run_id=run.info.run_id,
            tags={**tags, KEY_TAG: key},
            description=description,
        )
    return int(created.version)


DESCRIPTION = (
    "The L2 lab's chosen model: `dvc repro` registers each new choice as a version, tagged "
    "with its decision; the alias marks the workspace's."
)


@contextlib.contextmanager
def _artifact_run(client: MlflowClient, experiment_id: str, models_digest: str, tags) -> Iterator:
    """The run whose artifacts hold the registered folder.

    The sweep's parent run that made these models, when this store has it: the model sits
    beside the sweep that chose it, and no extra run joins the sweep's runs. Otherwise
    (models restored by DVC from a cache filled against another store, a fresh clone that
    pulled them) a run of its own in the same experiment, ending FINISHED once the version
    exists, FAILED if it could not be made.
    """
    found = runs.find_sweeps(models_digest)
    if found:
        yield client.get_run(found[0].parent_id)
        return
    run_tags = {k: v for k, v in tags.items() if k in ("git_commit", "dvc_exp_name")}
    run = client.create_run(
        experiment_id, run_name=f"chosen {tags.get('entry', '')}".strip(),
        tags={**run_tags, "chosen_model": "true"},
    )  # fmt: skip
    try:
        yield run
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the store may be what failed
            client.set_tag(run.info.run_id, "failure_reason", store.one_line(exc))
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))


def alias_version(client: MlflowClient, name: str, alias: str) -> int | None:
    """The version `alias` points at (None: no such alias or model yet)."""
    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        # No such model: RESOURCE_DOES_NOT_EXIST; no such alias: INVALID_PARAMETER_VALUE.
        if exc.error_code in {ErrorCode.Name(RESOURCE_DOES_NOT_EXIST),
                              ErrorCode.Name(INVALID_PARAMETER_VALUE)}:  # fmt: skip
            return None
        raise

"""A sweep in MLflow: one parent run per execution of `train`, one child run per model.

All runs are created before training starts, so the UI shows the whole sweep at once. Every
run ends FINISHED, FAILED with the reason (a model that diverged, an error) or KILLED
(Ctrl-C, SIGTERM, the `dvc` parent gone), never RUNNING. Later stages find the runs by the
digest of the models they made (`find_sweeps`) and add to them through the client, without
reopening them, so a run's duration is its training time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import RunStatus, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from pipeline.core.contracts import MODELS_DIGEST_TAG, models_digest
from pipeline.core.errors import TrackingError
from pipeline.tracking.store import one_line, project_root

log = logging.getLogger(__name__)

NOTE_TAG = "mlflow.note.content"  # the run's description in the UI


def run_tags(root: Path) -> dict[str, str]:
    tags = {"git_commit": _git_commit(root)}
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


class SweepRuns:
    """The parent run and the child runs of one execution of `train`, by tower name."""

    def __init__(self, client: MlflowClient, parent_id: str, child_ids: dict[str, str]):
        self.client = client
        self.parent_id = parent_id
        self.child_ids = child_ids
        self._open = {parent_id, *child_ids.values()}

    def add_child(self, tower: str, run_id: str) -> None:
        self.child_ids[tower] = run_id
        self._open.add(run_id)

    def finish(self, tower: str) -> None:
        self._end(self.child_ids[tower], RunStatus.FINISHED)

    def fail(self, tower: str, reason: str) -> None:
        self._end(self.child_ids[tower], RunStatus.FAILED, reason)

    def _end(self, run_id: str, status: int, reason: str | None = None) -> None:
        name = RunStatus.to_string(status)
        if reason is not None:
            self.client.set_tag(run_id, "failure_reason", reason)
            self.client.set_tag(run_id, NOTE_TAG, f"{name}: {reason}")
        self.client.set_terminated(run_id, name)
        self._open.discard(run_id)

    def end_open_runs(self, status: int, reason: str | None) -> None:
        """Best effort: the store itself may be what failed, and the original error matters."""
        # The children first: the parent stays RUNNING while any of them does.
        children = sorted(self._open - {self.parent_id})
        for run_id in [*children, *({self.parent_id} & self._open)]:
            try:
                self._end(run_id, status, reason)
            except Exception as error:
                log.warning(
                    "could not mark MLflow run %s %s: %s",
                    run_id,
                    RunStatus.to_string(status),
                    one_line(error),
                )


@contextlib.contextmanager
def sweep_runs(
    experiment_id: str,
    towers: Sequence[str],
    tower_tags: Mapping[str, Mapping[str, str]],
    nest_under: Mapping[str, str] | None = None,
) -> Iterator[SweepRuns]:
    """Create the sweep's parent run and a child run per tower; yield them. A tower named
    in `nest_under` (a cross-validation fold) nests under that earlier tower's run instead.

    On leaving, runs not yet ended end FINISHED; if the block raises, FAILED with the reason
    (KILLED on Ctrl-C or SIGTERM, which arrive as KeyboardInterrupt: see core/runner.py).
    """
    client = MlflowClient()
    tags = run_tags(project_root())
    exp_name = tags.get("dvc_exp_name")
    parent = client.create_run(
        experiment_id,
        run_name=f"sweep {exp_name}" if exp_name else "sweep",
        tags={**tags, "sweep": "parent", "sweep_towers": ",".join(towers)},
    )
    runs = SweepRuns(client, parent.info.run_id, {})
    try:
        for tower in towers:
            owner = (nest_under or {}).get(tower)
            parent_id = runs.child_ids[owner] if owner else runs.parent_id
            child = client.create_run(
                experiment_id,
                run_name=tower,
                tags={**tags, **tower_tags.get(tower, {}), MLFLOW_PARENT_RUN_ID: parent_id},
            )
            runs.add_child(tower, child.info.run_id)
        yield runs
    except BaseException as exc:
        killed = isinstance(exc, KeyboardInterrupt)
        runs.end_open_runs(RunStatus.KILLED if killed else RunStatus.FAILED, one_line(exc))
        if isinstance(exc, MlflowException):
            raise TrackingError(f"MLflow store failed during the sweep: {one_line(exc)}") from None
        raise
    else:
        runs.end_open_runs(RunStatus.FINISHED, None)


@dataclass(frozen=True)
class FoundSweep:
    """The runs of the execution of `train` that made a given models/ folder."""

    parent_id: str
    experiment_id: str
    child_ids: dict[tuple[str, int], str]  # (entry, seed) -> run id
    tags: dict[str, str] = field(default_factory=dict)  # the parent run's tags

    def run_of(self, entry: str, seed: int) -> str | None:
        return self.child_ids.get((entry, seed))


def find_sweeps(models_digest: str) -> list[FoundSweep]:
    """Every FINISHED parent run tagged `MODELS_DIGEST_TAG = models_digest`, in any
    experiment, latest first, with their child runs: each execution of `train` that made
    exactly these models (`dvc repro -f train` makes the same models again)."""
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    parents = client.search_runs(
        experiments,
        filter_string=(
            f"tags.{MODELS_DIGEST_TAG} = '{models_digest}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    return [_with_children(client, parent) for parent in parents]


def _with_children(client: MlflowClient, parent) -> FoundSweep:
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.info.run_id}'",
        max_results=50_000,
    )
    child_ids = {
        (run.data.tags["entry"], int(run.data.tags["seed"])): run.info.run_id
        for run in children
        if "entry" in run.data.tags and "seed" in run.data.tags
    }
    return FoundSweep(
        parent.info.run_id,
        parent.info.experiment_id,
        child_ids,
        dict(parent.data.tags),
    )


def sweeps_of_models(models_dir: Path, uri: str) -> list[FoundSweep]:
    """The runs that trained the models in `models_dir` (every execution of `train` that made
    them), found in the store at `uri` (which `store.connect` returned); none, with one
    warning line, when it has none."""
    found = find_sweeps(models_digest(models_dir))
    if not found:
        log.warning(
            "warning: no MLflow run in %s trained these models (DVC restored them from a cache "
            "filled against another store?); `dvc repro -f train` records them here",
            uri,
        )
    return found


@contextlib.contextmanager
def refit_run(found: FoundSweep, entry: str) -> Iterator[str]:
    """A run tagged `refit` under the sweep's parent run, for the chosen entry trained on
    every training and validation row; yields its id. Ends FINISHED, or FAILED/KILLED with
    the reason, never RUNNING."""
    client = MlflowClient()
    tags = {**run_tags(project_root()), "refit": "true", "entry": entry,
            MLFLOW_PARENT_RUN_ID: found.parent_id}  # fmt: skip
    run = client.create_run(found.experiment_id, run_name=f"refit {entry}", tags=tags)
    runs = SweepRuns(client, run.info.run_id, {})
    try:
        yield run.info.run_id
    except BaseException as exc:
        killed = isinstance(exc, KeyboardInterrupt)
        runs.end_open_runs(RunStatus.KILLED if killed else RunStatus.FAILED, one_line(exc))
        raise
    else:
        runs.end_open_runs(RunStatus.FINISHED, None)

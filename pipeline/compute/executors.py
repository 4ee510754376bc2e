"""Which executor trains the groups: this process, local workers, or a Ray cluster."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from pipeline.compute.groups import GroupFailure, GroupOutcomes, GroupResult, GroupTask
from pipeline.compute.work import run_group
from pipeline.config.schema import ComputeConfig
from pipeline.core.epoch_metrics import EpochSink
from pipeline.core.errors import LabError

log = logging.getLogger(__name__)


class EachEpochOnce:
    """Passes each tower's epochs on once, in order.

    A group trained again (its worker or node was lost) repeats the epochs it had reached,
    with the same bits; MLflow, the history and the progress block have them already, so a
    rerun shows nothing until it passes the epoch where the lost attempt stopped.
    """

    def __init__(self, sink: EpochSink):
        self.sink = sink
        self.reached: dict[str, int] = {}

    def __call__(self, epoch: int, per_tower: Mapping[str, Mapping[str, float]]) -> None:
        fresh = {name: m for name, m in per_tower.items() if epoch > self.reached.get(name, 0)}
        if per_tower and not fresh:
            return
        self.reached.update(dict.fromkeys(fresh, epoch))
        self.sink(epoch, fresh)


def in_process(
    tasks: Sequence[GroupTask], on_epoch: EpochSink, models: Mapping[str, object] | None = None
) -> GroupOutcomes:
    """The groups one after the other here; `models`: the stage's own models by tower name,
    trained in place."""
    outcome = GroupOutcomes()
    for task in tasks:
        own = [models[name] for name in task.names] if models is not None else None
        try:
            outcome.results.append(run_group(task, on_epoch, own))
        except Exception as exc:  # the group's runs fail with the reason; the others go on
            reason = f"{type(exc).__name__}: {exc}"
            log.error("error: %s failed: %s", task.label, reason)
            outcome.failures.append(GroupFailure(task.index, task.names, reason))
    return outcome


def executor_label(compute: ComputeConfig) -> str:
    if os.environ.get("RAY_ADDRESS"):
        return f"Ray tasks on the cluster at RAY_ADDRESS ({compute.threads_per_worker} CPU each)"
    if compute.workers:
        return f"{compute.workers} local worker processes"
    return "this process"


def run_groups(
    tasks: Sequence[GroupTask],
    compute: ComputeConfig,
    on_epoch: EpochSink,
    models: Mapping[str, object] | None = None,
) -> GroupOutcomes:
    on_epoch = EachEpochOnce(on_epoch)
    if os.environ.get("RAY_ADDRESS"):
        from pipeline.compute.ray_tasks import run_on_ray

        return run_on_ray(tasks, compute, on_epoch)
    if compute.workers:
        from pipeline.compute.local import LocalWorkers

        seed = tasks[0].recipe.base_seed if tasks else 0
        workers = LocalWorkers(compute.workers, compute.threads_per_worker, seed)
        return workers.run(tasks, on_epoch)
    return in_process(tasks, on_epoch, models)


def run_group_into(
    task: GroupTask, compute: ComputeConfig, on_epoch: EpochSink, models: Mapping[str, object]
) -> GroupResult:
    """One group through `run_groups`, its trained weights set on `models` (by tower name);
    a failed group raises LabError with the reason."""
    outcome = run_groups([task], compute, on_epoch, models)
    if outcome.failures:
        raise LabError(f"{task.label} failed: {outcome.failures[0].reason}")
    result = outcome.results[0]
    for name, weights in result.weights.items():
        models[name].set_weights(weights)
    return result

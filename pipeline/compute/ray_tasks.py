"""RAY_ADDRESS set: one Ray Core task per group on that cluster (docs/scaling.md).

Each task is a Ray generator: it streams `epoch` messages while its group trains (the
stage logs them to MLflow as they come) and ends with the group's numpy result. A task whose
worker or node is lost is submitted again, at most MAX_RERUNS times, with the same bits; a
task that raises fails its group with the reason. Ctrl-C or SIGTERM cancels every task.
Ray is imported only here, so a stage without RAY_ADDRESS never loads it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence

from pipeline.compute.groups import GroupFailure, GroupOutcomes, GroupResult, GroupTask
from pipeline.compute.local import INTER_OP_THREADS, MAX_RERUNS
from pipeline.config.schema import ComputeConfig
from pipeline.core.epoch_metrics import EpochSink

log = logging.getLogger(__name__)

_STARTED_SEED: list[int] = []  # per Ray worker process: TensorFlow set up once


def train_group(task: GroupTask) -> Iterator[tuple]:
    """The Ray task's body: ("epoch", epoch, metrics) per epoch, then ("done", result)."""
    if not _STARTED_SEED:
        from pipeline.core.runtime import init_tensorflow

        init_tensorflow(task.recipe.base_seed)
        _STARTED_SEED.append(task.recipe.base_seed)
    from pipeline.compute.work import run_group

    messages: queue.Queue = queue.Queue()
    outcome: list = []

    def fit() -> None:
        try:
            outcome.append(("done", run_group(task, lambda e, m: messages.put(("epoch", e, m)))))
        except BaseException as exc:  # re-raised in the task's own thread below
            outcome.append(("raised", exc))
        messages.put(None)

    # Keras calls the epoch sink inside `fit`; a thread lets this generator yield meanwhile.
    threading.Thread(target=fit, daemon=True).start()
    while (message := messages.get()) is not None:
        yield message
    kind, value = outcome[0]
    if kind == "raised":
        raise value
    yield ("done", value)


def run_on_ray(
    tasks: Sequence[GroupTask], compute: ComputeConfig, on_epoch: EpochSink
) -> GroupOutcomes:
    import ray
    from ray.exceptions import RayError, RayTaskError

    ray.init(address=os.environ["RAY_ADDRESS"], logging_level=logging.WARNING, log_to_driver=False)
    remote = ray.remote(train_group).options(
        num_cpus=compute.threads_per_worker,
        max_retries=0,  # reruns are ours: the messages of a lost attempt must start over
        runtime_env={
            "env_vars": {
                "TF_NUM_INTRAOP_THREADS": str(compute.threads_per_worker),
                "TF_NUM_INTEROP_THREADS": str(INTER_OP_THREADS),
            }
        },
    )
    reruns = {task.index: 0 for task in tasks}
    running = {remote.remote(task): task for task in tasks}
    results: dict[int, GroupResult] = {}
    failures: dict[int, GroupFailure] = {}
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            for generator in ready:
                task = running[generator]
                try:
                    kind, *body = ray.get(next(generator))
                except StopIteration:
                    del running[generator]
                    continue
                except RayTaskError as exc:  # the group's own code raised
                    del running[generator]
                    reason = f"{type(exc.cause).__name__}: {exc.cause}"
                    log.error("error: %s failed: %s", task.label, reason)
                    failures[task.index] = GroupFailure(task.index, task.names, reason)
                    continue
                except RayError as exc:  # its worker or node was lost
                    del running[generator]
                    if reruns[task.index] >= MAX_RERUNS:
                        failures[task.index] = GroupFailure(
                            task.index, task.names, f"lost {MAX_RERUNS + 1} times: {exc}"
                        )
                        continue
                    reruns[task.index] += 1
                    log.warning(
                        "warning: %s: its Ray task was lost (%s); training it again (rerun %d "
                        "of %d)",
                        task.label,
                        type(exc).__name__,
                        reruns[task.index],
                        MAX_RERUNS,
                    )
                    running[remote.remote(task)] = task
                    continue
                if kind == "epoch":
                    on_epoch(*body)
                else:
                    result = body[0]
                    result.attempts = reruns[task.index] + 1
                    results[task.index] = result
    finally:
        for generator in running:
            with contextlib.suppress(RayError, TypeError, ValueError):  # already ended
                ray.cancel(generator, force=True)
        ray.shutdown()
    return GroupOutcomes(
        results=[results[i] for i in sorted(results)],
        failures=[failures[i] for i in sorted(failures)],
    )

"""`compute.workers: N`: the groups trained by N worker processes on this machine.

Each worker is a fresh Python process (multiprocessing's `spawn`, worker.py) whose
TensorFlow thread pools are pinned before its import, so N workers share the cores without
oversubscribing them. Tasks and results travel as `multiprocessing.connection` messages. A
worker that dies mid-group (killed, out of memory) is replaced and its group trains again
from the start, at most MAX_RERUNS times: a group's result depends only on its task, so a
rerun gives the same bits. Whatever ends `run` (done, an exception, Ctrl-C or SIGTERM), no
worker outlives it.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import wait

from pipeline.compute.groups import GroupFailure, GroupOutcomes, GroupResult, GroupTask
from pipeline.core.epoch_metrics import EpochSink

log = logging.getLogger(__name__)

MAX_RERUNS = 2
INTER_OP_THREADS = 2
# A fresh interpreter per worker: a forked child would inherit the stage's TensorFlow.
_SPAWN = multiprocessing.get_context("spawn")


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class _Worker:
    def __init__(self, seed: int, threads: int):
        from pipeline.compute.worker import serve

        self.connection, child_end = _SPAWN.Pipe()
        self.process = _SPAWN.Process(
            target=serve, args=(child_end, seed, threads, INTER_OP_THREADS), name="lab-worker"
        )
        self.process.start()
        child_end.close()  # so that the worker's death ends this end's input
        self.task: GroupTask | None = None

    def give(self, task: GroupTask) -> None:
        self.task = task
        self.connection.send(task)

    def stop(self) -> None:
        """Ask politely (end of input), then end it; reaped either way."""
        if self.process.is_alive():
            self.connection.close()
            if self.task is not None:  # mid-group: no reason to wait for it
                self.process.kill()
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self.connection.close()


class LocalWorkers:
    def __init__(self, n_workers: int, threads: int, seed: int):
        self.n_workers = n_workers
        self.threads = threads
        self.seed = seed
        self.workers: list[_Worker] = []

    def pid_of_group(self, index: int) -> int | None:
        """The process training group `index` now (for tests that kill it)."""
        for worker in self.workers:
            if worker.task is not None and worker.task.index == index:
                return worker.process.pid
        return None

    def run(self, tasks: Sequence[GroupTask], on_epoch: EpochSink) -> GroupOutcomes:
        pending = deque(tasks)
        reruns = {task.index: 0 for task in tasks}
        results: dict[int, GroupResult] = {}
        failures: dict[int, GroupFailure] = {}
        try:
            for _ in range(min(self.n_workers, len(tasks))):
                self.workers.append(_Worker(self.seed, self.threads))
            for worker in self.workers:
                if pending:
                    worker.give(pending.popleft())
            while len(results) + len(failures) < len(tasks):
                by_connection = {worker.connection: worker for worker in self.workers}
                for connection in wait(list(by_connection)):
                    worker = by_connection[connection]
                    try:
                        kind, *body = connection.recv()
                    except EOFError:  # its end closed: the worker died
                        self._lost(worker, reruns, pending, failures)
                        continue
                    if kind == "epoch":
                        on_epoch(body[1], body[2])
                    elif kind == "done":
                        result = body[0]
                        result.attempts = reruns[result.index] + 1
                        results[result.index] = result
                        worker.task = None
                    elif kind == "failed":
                        index, reason = body
                        log.error("error: %s failed: %s", worker.task.label, reason)
                        failures[index] = GroupFailure(index, list(worker.task.names), reason)
                        worker.task = None
                    if worker.task is None and pending:
                        worker.give(pending.popleft())
        finally:
            for worker in self.workers:
                worker.stop()
            self.workers = []
        return GroupOutcomes(
            results=[results[i] for i in sorted(results)],
            failures=[failures[i] for i in sorted(failures)],
        )

    def _lost(self, worker: _Worker, reruns, pending, failures) -> None:
        """A worker's connection ended: it died. Its group, if any, reruns or fails."""
        worker.process.join()
        self.workers.remove(worker)
        worker.connection.close()
        task, why = worker.task, exit_reason(worker.process.exitcode)
        if task is not None:
            if reruns[task.index] < MAX_RERUNS:
                reruns[task.index] += 1
                log.warning(
                    "warning: %s: its worker was %s; training it again (rerun %d of %d)",
                    task.label,
                    why,
                    reruns[task.index],
                    MAX_RERUNS,
                )
                pending.appendleft(task)
            else:
                failures[task.index] = GroupFailure(
                    task.index, task.names, f"its worker was {why}, {MAX_RERUNS + 1} times"
                )
        if pending:
            replacement = _Worker(self.seed, self.threads)
            self.workers.append(replacement)
            replacement.give(pending.popleft())

"""`compute.workers: N`: the groups trained by N worker processes on this machine.

Each worker is a fresh Python process (worker.py) whose TensorFlow thread pools are pinned
before its import, so N workers share the cores without oversubscribing them. A worker that
dies mid-group (killed, out of memory) is replaced and its group trains again from the
start, at most MAX_RERUNS times: a group's result depends only on its task, so a rerun
gives the same bits. Whatever ends `run` (done, an exception, Ctrl-C or SIGTERM), no worker
outlives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence

from pipeline.compute.channel import FrameReader, send
from pipeline.compute.groups import GroupFailure, GroupResult, GroupTask, SweepOutcome
from pipeline.core.epoch_metrics import EpochSink

log = logging.getLogger(__name__)

MAX_RERUNS = 2
INTER_OP_THREADS = 2


def worker_environment(threads: int) -> dict[str, str]:
    return {
        **os.environ,
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(INTER_OP_THREADS),
    }


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class _Worker:
    def __init__(self, seed: int, threads: int):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.compute.worker", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=worker_environment(threads),
        )
        os.set_blocking(self.process.stdout.fileno(), False)
        self.reader = FrameReader(self.process.stdout.fileno())
        self.task: GroupTask | None = None

    def give(self, task: GroupTask) -> None:
        self.task = task
        send(self.process.stdin, task)

    def stop(self) -> None:
        """Ask politely (end of input), then end it; reaped either way."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            if self.task is not None:  # mid-group: no reason to wait for it
                self.process.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


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

    def run(self, tasks: Sequence[GroupTask], on_epoch: EpochSink) -> SweepOutcome:
        pending = deque(tasks)
        reruns = {task.index: 0 for task in tasks}
        results: dict[int, GroupResult] = {}
        failures: dict[int, GroupFailure] = {}
        selector = selectors.DefaultSelector()
        try:
            for _ in range(min(self.n_workers, len(tasks))):
                self._start(selector)
            for worker in self.workers:
                if pending:
                    worker.give(pending.popleft())
            while len(results) + len(failures) < len(tasks):
                for key, _ in selector.select():
                    worker: _Worker = key.data
                    for message in worker.reader.read():
                        kind, *body = message
                        if kind == "epoch":
                            on_epoch(body[1], body[2])
                        elif kind == "done":
                            result = body[0]
                            result.attempts = reruns[result.index] + 1
                            results[result.index] = result
                            worker.task = None
                        elif kind == "failed":
                            index, reason = body
                            log.error("error: %s failed: %s", worker.task.describe(), reason)
                            failures[index] = GroupFailure(index, list(worker.task.names), reason)
                            worker.task = None
                    if worker.reader.closed:
                        self._lost(selector, worker, reruns, pending, failures)
                        continue
                    if worker.task is None and pending:
                        worker.give(pending.popleft())
        finally:
            selector.close()
            for worker in self.workers:
                worker.stop()
            self.workers = []
        return SweepOutcome(
            results=[results[i] for i in sorted(results)],
            failures=[failures[i] for i in sorted(failures)],
        )

    def _start(self, selector: selectors.BaseSelector) -> _Worker:
        worker = _Worker(self.seed, self.threads)
        self.workers.append(worker)
        selector.register(worker.reader.fd, selectors.EVENT_READ, worker)
        return worker

    def _lost(self, selector, worker: _Worker, reruns, pending, failures) -> None:
        """A worker's output ended: it died. Its group, if any, reruns or fails."""
        selector.unregister(worker.reader.fd)
        code = worker.process.wait()
        self.workers.remove(worker)
        worker.process.stdout.close()
        task, why = worker.task, exit_reason(code)
        if task is not None:
            if reruns[task.index] < MAX_RERUNS:
                reruns[task.index] += 1
                log.warning(
                    "warning: %s: its worker was %s; training it again (rerun %d of %d)",
                    task.describe(),
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
            self._start(selector).give(pending.popleft())

"""A local worker process, started by the stage (local.py) with multiprocessing's `spawn`.

Receives group tasks on its connection and sends back messages: `ready` once TensorFlow is
up, `epoch` per group and epoch (the stage logs them to MLflow), then `done` with the
group's numpy weights, or `failed` with the reason. Only the stage talks to MLflow. Its
thread pools are fixed by TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, set here before
this process imports TensorFlow.
"""

from __future__ import annotations

import os
import signal
from multiprocessing.connection import Connection


def serve(connection: Connection, seed: int, intra_op_threads: int, inter_op_threads: int) -> None:
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(intra_op_threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(inter_op_threads)
    # Ctrl-C reaches the whole process group: the stage decides, and ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from pipeline.core.parent import stop_when_parent_exits

    stop_when_parent_exits()
    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(seed)
    from pipeline.compute.work import environment, run_group

    connection.send(("ready", environment()))
    while True:
        try:
            task = connection.recv()
        except EOFError:  # the stage closed its end: no more groups
            return
        try:
            result = run_group(task, _epoch_sender(connection, task.index))
        except Exception as exc:  # the group fails; the stage records why, others go on
            connection.send(("failed", task.index, f"{type(exc).__name__}: {exc}"))
        else:
            connection.send(("done", result))


def _epoch_sender(connection: Connection, index: int):
    def send(epoch: int, metrics: dict) -> None:
        connection.send(("epoch", index, epoch, metrics))

    return send

"""A local worker process: `python -m pipeline.compute.worker <seed>`, started by the stage.

Reads group tasks from stdin and writes messages to stdout (channel.py): `ready` once
TensorFlow is up, `epoch` per group and epoch (the stage logs them to MLflow), then `done`
with the group's numpy weights, or `failed` with the reason. Only the stage talks to MLflow.
Its thread pools are fixed by TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, which the
stage sets before this process imports TensorFlow.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    seed = int(sys.argv[1])
    # The channel is the real stdout; anything else printed goes to stderr.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Ctrl-C reaches the whole process group: the stage decides, and ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from pipeline.core.parent import stop_when_parent_exits

    stop_when_parent_exits()
    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(seed)
    from pipeline.compute.channel import receive, send
    from pipeline.compute.work import environment, run_group

    send(channel, ("ready", environment()))
    tasks = sys.stdin.buffer
    while (task := receive(tasks)) is not None:
        try:
            result = run_group(
                task, lambda epoch, metrics: send(channel, ("epoch", task.index, epoch, metrics))
            )
        except Exception as exc:  # the group fails; the stage records why, others go on
            send(channel, ("failed", task.index, f"{type(exc).__name__}: {exc}"))
        else:
            send(channel, ("done", result))


if __name__ == "__main__":
    main()

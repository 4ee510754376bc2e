"""Stopping a process whose parent has exited: a stage whose `dvc` is gone, a local worker
whose stage is.

`kill -TERM <dvc>` (or a container runtime's SIGTERM to its first process) makes dvc exit at
once without stopping the stage it runs; without this the stage would train on and log a
FINISHED run that no output refers to. The stage then gets SIGTERM, and stops as on any
SIGTERM (core/runner.py).

DVC runs a stage's `cmd` through `$SHELL -c`. bash replaces itself with a lone command, so
dvc is the stage's parent; dash (Debian's /bin/sh, DVC's choice where SHELL is unset, as in
most containers) waits for it instead and outlives dvc, so the stage watches the shell's
parent too.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from pathlib import Path

# linux/prctl.h: deliver a signal to this process when the thread that forked it exits.
PR_SET_PDEATHSIG = 1
SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "ash", "busybox"})
WATCH_EVERY_S = 0.5


def parent_of(pid: int) -> int | None:
    """`pid`'s parent, from /proc; None once `pid` has exited (or without /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after it.
    return int(stat.rpartition(")")[2].split()[1])


def is_shell(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in SHELLS
    except OSError:
        return False


# Read when a stage module imports this one, long before TensorFlow's imports: if dvc exits
# before `stop_when_parent_exits` runs, the parent-death signal never comes, and only a changed
# parent (or, behind a shell, a changed grandparent) tells.
PARENT_AT_START = os.getppid()
SHELL_PARENT_AT_START = parent_of(PARENT_AT_START) if is_shell(PARENT_AT_START) else None


def stop_when_parent_exits() -> None:
    """SIGTERM to this process once the process that started it (behind a shell: the shell's
    parent) has exited. No-op where prctl is missing (not Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return
    # The parent may have gone before prctl took effect: then no signal would ever come.
    if os.getppid() != PARENT_AT_START:
        os.kill(os.getpid(), signal.SIGTERM)
    elif SHELL_PARENT_AT_START is not None:
        threading.Thread(
            target=_stop_when_reparented,
            args=(PARENT_AT_START, SHELL_PARENT_AT_START),
            name="dvc-watch",
            daemon=True,
        ).start()


def _stop_when_reparented(shell: int, dvc: int) -> None:
    """Linux hands an orphan to init or a subreaper: the shell's parent changes when dvc
    exits. The signal goes to this process, so its main thread unwinds as on any SIGTERM."""
    while parent_of(shell) == dvc:
        time.sleep(WATCH_EVERY_S)
    os.kill(os.getpid(), signal.SIGTERM)

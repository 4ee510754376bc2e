"""What every stage's `main` shares: logging set-up, turning bad input into one line, and
stopping cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable

from pipeline.errors import LabError

EXIT_BAD_INPUT = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: unwinds like Ctrl-C, so every `finally` and run context ends cleanly."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def _raise_interrupted(signum: int, _frame: object) -> None:
    # A second signal while the first unwinds (ending the MLflow run) must not cut that short.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def run_stage(stage: str, body: Callable[[], None]) -> None:
    """Run a stage body; a LabError becomes `error: <stage>: <message>` and exit code 2.

    Ctrl-C and SIGTERM become `error: <stage>: interrupted by <signal>; ...` and exit code
    128 + signal number, after the stage's context managers have run (the MLflow run ends
    KILLED, staging folders are never renamed into place).
    """
    logging.basicConfig(
        level=logging.INFO,
        format=f"[{stage}] %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupted)
    try:
        body()
    except LabError as exc:
        print(f"error: {stage}: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except Interrupted as exc:
        print(
            f"error: {stage}: {exc}; run `dvc repro` again to redo this stage",
            file=sys.stderr,
        )
        sys.exit(128 + exc.signum)

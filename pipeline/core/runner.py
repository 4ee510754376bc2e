"""What every stage's `main` shares: logging set-up, turning bad input into one line, and
stopping cleanly on Ctrl-C, SIGTERM or the death of the `dvc` that started the stage."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.core.errors import LabError
from pipeline.core.files import abandon_staging, clean_stale
from pipeline.core.parent import stop_when_parent_exits

EXIT_BAD_INPUT = 2
# The signals this stage has received, so a stop that some library swallowed is not lost.
_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: unwinds like Ctrl-C, so every `finally` and run context ends cleanly."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def _raise_interrupted(signum: int, _frame: object) -> None:
    # A second signal while the first unwinds (ending the MLflow run) must not cut that short.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    _received.append(signum)
    raise Interrupted(signum)


def stop_if_interrupted() -> None:
    """Raise `Interrupted` again if a signal came and its first raise never reached the stage.

    The handler raises wherever the main thread happens to be, and a library's bare `except:`
    there (TensorFlow has them, e.g. in a `__del__` that garbage collection may run at any
    step) swallows it; the handler has ignored further signals by then, so the stage would
    train on and publish. Stages call this where stopping is safe: after every epoch, and
    before an output is published.
    """
    if _received:
        raise Interrupted(_received[0])


def run_stage(stage: str, body: Callable[[], None], outputs: Iterable[Path] = ()) -> None:
    """Run a stage body; a LabError becomes `error: <stage>: <message>` and exit code 2.

    Ctrl-C, SIGTERM and the death of the parent process become `error: <stage>: interrupted
    by <signal>; ...` and exit code 128 + signal number, after the stage's context managers
    have run (the MLflow run ends KILLED, staging folders are removed, never renamed into
    place).
    Leftovers of an earlier interrupted run beside each of `outputs` are removed first.
    """
    logging.basicConfig(
        level=logging.INFO,
        format=f"[{stage}] %(message)s",
        stream=sys.stderr,
        force=True,
    )
    _received.clear()
    previous = {
        sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        stop_when_parent_exits()
        for output in outputs:
            clean_stale(output)
        body()
    except LabError as exc:
        print(f"error: {stage}: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except Interrupted as exc:
        for output in outputs:
            abandon_staging(output)
        print(
            f"error: {stage}: {exc}; run `dvc repro` again to redo this stage",
            file=sys.stderr,
        )
        sys.exit(128 + exc.signum)
    finally:
        # Leave the process as it was: a caller that runs a stage in-process (a test, a
        # notebook) keeps its own Ctrl-C, and a stop of this stage does not stop its next work.
        _received.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

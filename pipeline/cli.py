"""What every stage's `main` shares: logging set-up and turning bad input into one line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from pipeline.errors import LabError

EXIT_BAD_INPUT = 2


def run_stage(stage: str, body: Callable[[], None]) -> None:
    """Run a stage body; a LabError becomes `error: <stage>: <message>` and exit code 2."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"[{stage}] %(message)s",
        stream=sys.stderr,
        force=True,
    )
    try:
        body()
    except LabError as exc:
        print(f"error: {stage}: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)

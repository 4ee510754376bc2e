"""A real terminal of a given width (tmux), for the recipes whose output must fit one."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid

from tests.support.params import VENV_BIN
from tests.support.project import Project


def in_terminal(project: Project, command: str, columns: int = 80, rows: int = 50) -> list[str]:
    """The screen of a real `columns`-wide terminal (tmux) after `command` ran in it; `rows`
    tall, so that no line of a longer output scrolls off before it is read."""
    session = f"l2lab-{uuid.uuid4().hex[:8]}"
    # A server of its own (-L): on the shared default socket, one test's last kill-session stops
    # the server while another test's new-session is connecting ("server exited unexpectedly").
    tmux = ["tmux", "-L", session]
    done = "__command_done__"
    shell = f"export PATH={shlex.quote(str(VENV_BIN))}:$PATH; {command}; echo {done}"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", str(columns), "-y", str(rows),
         "-c", str(project.root), "bash", "--norc", "-c", f"{shell}; sleep 600"],
        check=True, env=project.env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", session],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            # A table wider than the terminal opens DVC's pager, and `done` never shows.
            if done in screen:
                break
            assert time.monotonic() < deadline, f"{command} did not finish:\n{screen}"
            time.sleep(0.5)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    return [line for line in screen.splitlines()[: screen.splitlines().index(done)] if line]


def assert_fits(screen: list[str]) -> None:
    """Every line of `screen` within 80 columns, none cut by DVC (`>` or `…` at its end)."""
    for line in screen:
        assert len(line) <= 80, line
        assert not line.rstrip().endswith((">", "…")), "\n".join(screen)  # a cut column

"""A stage whose `dvc` parent dies stops like on SIGTERM, and leftovers of an interrupted run
are cleaned at the next start.

Real processes: a stage process started by a stand-in for `dvc` that is then SIGKILLed (what
`kill -TERM <dvc>` amounts to for the stage: dvc exits at once and the stage is left running).
A helper made a child subreaper adopts the orphaned stage, so its exit code can be read.
"""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core import parent, runner
from pipeline.core.files import clean_stale
from tests.support.params import ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux")

# The stage: run_stage around a body that would run for a minute.
STAGE = """
import os, sys, time
from pathlib import Path
from pipeline.core import parent, runner

state = Path(sys.argv[1])
state.write_text("imported")
if sys.argv[2] == "after-parent-died":
    while os.getppid() == parent.PARENT_AT_START:
        time.sleep(0.01)

def body():
    state.write_text("running")
    try:
        time.sleep(60)
    finally:
        state.write_text("unwound")

runner.run_stage("train", body)
state.write_text("finished")
"""

# The stand-in for dvc: starts the stage (directly, as bash's `-c` does with a lone command,
# or behind a shell that waits for it, as dash's does), says its pid, then waits for it, or
# exits once the stage has imported pipeline.core.runner but not yet called run_stage.
PARENT = """
import shlex, subprocess, sys, time
from pathlib import Path
stage = [sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]]
if sys.argv[3] == "killed-behind-a-shell":
    stage = ["/bin/sh", "-c", shlex.join(stage) + "; exit $?"]
stage = subprocess.Popen(stage)
print(stage.pid, flush=True)
if sys.argv[3] != "after-parent-died":
    stage.wait()
while not (Path(sys.argv[2]).exists() and Path(sys.argv[2]).read_text() == "imported"):
    time.sleep(0.01)
"""

# Adopts the orphaned stage (PR_SET_CHILD_SUBREAPER = 36) and reports how it ended.
REAPER = """
import ctypes, json, os, signal, subprocess, sys, time
from pathlib import Path

stage_code, parent_code, state, mode = sys.argv[1:5]
assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0
parent = subprocess.Popen([sys.executable, "-c", parent_code, stage_code, state, mode],
                          stdout=subprocess.PIPE, text=True)
stage_pid = int(parent.stdout.readline())
if mode != "after-parent-died":
    deadline = time.monotonic() + 60
    while not (Path(state).exists() and Path(state).read_text() == "running"):
        assert time.monotonic() < deadline, "the stage did not start"
        time.sleep(0.02)
    parent.send_signal(signal.SIGKILL)
parent.wait()
start = time.monotonic()
while True:
    pid, status = os.waitpid(stage_pid, os.WNOHANG)
    if pid:
        break
    if time.monotonic() - start > 20:
        os.kill(stage_pid, signal.SIGKILL)
        os.waitpid(stage_pid, 0)
        print(json.dumps({"code": None}))
        sys.exit()
    time.sleep(0.02)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - start}))
"""


@pytest.mark.parametrize(
    "mode", ["killed-while-running", "killed-behind-a-shell", "after-parent-died"]
)
def test_a_stage_whose_parent_dies_unwinds_and_exits_as_on_sigterm(tmp_path: Path, mode: str):
    state = tmp_path / "state"
    result = subprocess.run(
        [sys.executable, "-c", REAPER, STAGE, PARENT, str(state), mode],
        cwd=ROOT,  # the checkout's `pipeline`, as under dvc
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 128 + signal.SIGTERM, (outcome, result.stderr)
    assert outcome["seconds"] < 10, outcome
    if mode != "after-parent-died":
        assert state.read_text() == "unwound"  # `finally` ran: MLflow runs end KILLED there
    else:
        assert state.read_text() == "imported"  # stopped before the body began
    assert (
        "error: train: interrupted by SIGTERM; run `dvc repro` again to redo this stage"
        in result.stderr
    )


def test_clean_stale_removes_partial_and_old_leftovers(tmp_path: Path):
    models = tmp_path / "models"
    (models / "l2_0.partial" / "repeats").mkdir(parents=True)
    (models / "l2_0.old").mkdir()
    (models / "l2_0").mkdir()
    (models / "l2_0" / "model.keras").write_text("kept")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "l2_0.json.partial").write_text("{")
    (metrics / "l2_0.json").write_text("{}")

    clean_stale(models / "l2_0")
    clean_stale(metrics / "l2_0.json")
    clean_stale(tmp_path / "nothing_here")

    assert sorted(p.name for p in models.iterdir()) == ["l2_0"]
    assert (models / "l2_0" / "model.keras").read_text() == "kept"
    assert sorted(p.name for p in metrics.iterdir()) == ["l2_0.json"]


@pytest.fixture
def in_process_stage() -> Iterator[None]:
    """Undo what run_stage sets up in this (pytest's) process: signal handlers, the
    parent-death signal."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    ctypes.CDLL(None).prctl(parent.PR_SET_PDEATHSIG, 0, 0, 0, 0)


def test_run_stage_cleans_leftovers_of_its_outputs_before_the_body(
    tmp_path: Path, in_process_stage: None
):
    out = tmp_path / "models" / "l2_0"
    stale = out.with_name("l2_0.partial")
    stale.mkdir(parents=True)
    seen = []
    runner.run_stage("train", lambda: seen.append(stale.exists()), outputs=[out])
    assert seen == [False]

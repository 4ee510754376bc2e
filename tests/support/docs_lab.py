"""The scratch project the docs' commands run in: the tiny params with the default sweep's
entry names (the docs address `sweep.l2_1e_2` and `metrics/l2_1e_2.json`), reproduced and
committed, so a command's effect on the workspace shows in `git status` and `snapshot`."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from pathlib import Path

from tests.support.docs_commands import blocks_of
from tests.support.params import tiny_params
from tests.support.project import Project, make_project

# Never compared: git's and DVC's own state, the MLflow store, caches of Python.
# Not the user's files: git's and DVC's own, the environment, and the stores every run adds
# to (MLflow's, and the trained models a later sweep reuses: docs/reuse.md).
_NOT_WORKSPACE = {".git", ".dvc", ".venv", "mlflow.db", "mlflow.db.lock", "mlartifacts",
                  "model-store"}  # fmt: skip


def docs_params() -> dict:
    params = tiny_params()
    # All of the digits' training rows (1078): `grid.train_sizes` in the docs goes to 800.
    params["data"]["digits"]["train_subset"] = None
    params["model"]["hidden_units"] = [8, 8]  # two hidden layers, as the docs' per-layer rates
    params["train"].update(epochs=2, batch_size=64)
    params["sweep"] = {"l2_0": {"l2": 0.0}, "l2_1e_2": {"l2": 0.01}}
    return params


def make_docs_lab(root: Path) -> Project:
    lab = make_project(root, docs_params())
    lab.dvc("repro")
    lab.run("git", "add", "-A")
    lab.run("git", "commit", "-qm", "the sweep")
    lab.run("git", "branch", "-f", "main")  # docs/views.md: `dvc plots diff main`
    return lab


def snapshot(lab: Project) -> dict[str, str]:
    """Every workspace file (git's and DVC's outputs alike) by its SHA-256."""
    found = {}
    for folder, dirs, files in os.walk(lab.root):
        dirs[:] = [d for d in dirs if d not in _NOT_WORKSPACE and d != "__pycache__"]
        for name in files:
            if name not in _NOT_WORKSPACE:
                path = Path(folder) / name
                found[str(path.relative_to(lab.root))] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return found


def wait_for_queue(lab: Project, timeout: float = 600) -> str:
    """`dvc queue status` once no experiment is queued or running; fails on a failed one."""
    deadline = time.monotonic() + timeout
    while True:
        status = lab.dvc("queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            break
        assert time.monotonic() < deadline, status
        time.sleep(2)
    assert "Failed" not in status, status
    return status


def run_documented(lab: Project, text: str) -> str:
    """One documented command, as bash runs it from the project root; fails unless it
    exits 0. A `dvc queue start` is waited for: the docs read the results next."""
    started = time.monotonic()
    done = lab.run("bash", "-euo", "pipefail", "-c", text)
    if text.startswith("dvc queue start"):
        wait_for_queue(lab)
    print(f"{time.monotonic() - started:6.1f} s  {text}")  # each command's cost, with -rP
    return done.stdout


def run_page_keeping_the_workspace(lab: Project, page: str) -> list[str]:
    """Every command of the page's blocks; after each, the workspace is as before and git
    sees no change (the page runs them in temporary copies: `--temp`, `--queue`)."""
    before = snapshot(lab)
    outputs = []
    for text in blocks_of(page):
        outputs.append(run_documented(lab, text))
        assert snapshot(lab) == before, text
        assert lab.run("git", "status", "--porcelain").stdout == "", text
    return outputs


def experiments(lab: Project) -> dict[str, dict]:
    """`dvc exp show`'s rows by experiment name."""
    rows = csv.DictReader(io.StringIO(lab.dvc("exp", "show", "--csv").stdout))
    return {row["Experiment"]: row for row in rows if row["Experiment"]}

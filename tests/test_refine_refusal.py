"""`python -m pipeline.refine` refuses, changing nothing, when a round's workspace
`dvc exp run` would overwrite an uncommitted edit (a real git repository, a real edit)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline import refine
from tests.support.params import ROOT


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    ).stdout


def _committed_lab(root: Path) -> Path:
    """params.yaml, dvc.yaml and a report committed to git, as after a committed sweep."""
    root.mkdir()
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, root / name)
    (root / "reports").mkdir()
    (root / "reports" / "sweep.md").write_text("| entry |\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "sweep")
    return root


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_refine_refuses_an_uncommitted_params_edit_and_changes_nothing(tmp_path: Path):
    lab = _committed_lab(tmp_path / "lab")
    params = lab / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 150", "epochs: 20"))
    before = _hashes(lab)

    done = subprocess.run(
        [sys.executable, "-m", "pipeline.refine", "--rounds", "1"],
        cwd=lab, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        "error: refine: params.yaml: uncommitted changes that each round's `dvc exp run` would"
        " overwrite; commit them (git commit) or stash them (git stash), then run refine again"
    )
    assert _hashes(lab) == before  # the edit is still there, nothing was written
    assert "epochs: 20" in params.read_text()


def test_what_refine_checks_is_what_a_round_overwrites(tmp_path: Path):
    lab = _committed_lab(tmp_path / "lab")
    assert refine.uncommitted_outputs(lab / "dvc.yaml") == []
    (lab / "notes.txt").write_text("untracked: no round touches it\n")
    (lab / "reports" / "sweep.md").write_text("| entry | edited |\n")
    assert refine.uncommitted_outputs(lab / "dvc.yaml") == ["reports/sweep.md"]
    _git(lab, "stash", "-q")
    assert refine.uncommitted_outputs(lab / "dvc.yaml") == []

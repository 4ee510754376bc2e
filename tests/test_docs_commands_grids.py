"""docs/choosing-l2.md's commands (grids, data sizes, the next rates, seeds), run as written
in a scratch copy with tiny params: each exits 0, and since every one runs in a temporary copy
(`--temp`, `--queue`), the workspace is checked to stay exactly as it was. decision.md and
team.md: tests/test_docs_commands_queue.py; the coverage test and the other pages:
tests/test_docs_commands.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.docs_lab import experiments, run_page_keeping_the_workspace
from tests.support.project import copy_project

pytestmark = pytest.mark.slow


def test_choosing_l2_in_one_copy(docs_lab_once: Path, tmp_path: Path):
    lab = copy_project(docs_lab_once, tmp_path / "lab")
    run_page_keeping_the_workspace(lab, "docs/choosing-l2.md")
    names = set(experiments(lab))
    assert {"layers", "data_size", "next_4p5e_3"} <= names, names

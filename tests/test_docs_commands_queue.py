"""docs/decision.md's and docs/team.md's queued experiments, run as written in a scratch
copy with tiny params: each exits 0, and since every one runs in a temporary copy
(`--queue`), the workspace is checked to stay exactly as it was. choosing-l2.md:
tests/test_docs_commands_grids.py; the coverage test and the other pages:
tests/test_docs_commands.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.docs_lab import experiments, run_page_keeping_the_workspace
from tests.support.project import copy_project

pytestmark = pytest.mark.slow


def test_decision_and_team_in_one_copy(docs_lab_once: Path, tmp_path: Path):
    lab = copy_project(docs_lab_once, tmp_path / "lab")

    run_page_keeping_the_workspace(lab, "docs/decision.md")
    # Three experiments, each cross-validated: DVC accepted every key (data.digits.label_noise).
    rows = experiments(lab).values()
    assert len([r for r in rows if r.get("choose.folds") == "5"]) == 3

    run_page_keeping_the_workspace(lab, "docs/team.md")
    rates = [r.get("sweep.l2_1e_2.l2") for r in experiments(lab).values()]
    assert {"0.02", "0.05"} <= set(rates), rates

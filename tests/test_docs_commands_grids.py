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
    shown = experiments(lab)
    assert {"layers", "data_size", "next_1e_2"} <= set(shown), set(shown)
    # The next rates grow the sweep: its two entries stay, the four new ones join them, and
    # every one of the six has its metrics in the experiment.
    grown = shown["next_1e_2"]
    rates = {"l2_0": 0.0, "l2_1e_2": 0.01, "l2_4p5e_3": 0.0045, "l2_6p7e_3": 0.0067}
    rates |= {"l2_1p4e_2": 0.014, "l2_2p1e_2": 0.021}
    in_sweep = {c.split(".")[1] for c in grown if c.startswith("sweep.") and grown[c]}
    assert in_sweep == set(rates), grown
    assert {e: float(grown[f"sweep.{e}.l2"]) for e in rates} == rates
    assert all(grown[f"metrics/{e}.json:val_error"] for e in rates), grown

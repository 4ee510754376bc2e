"""The tutorial's commands run as written. (Figures and paths: test_docs_figures.py and
test_docs_paths.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.params import ROOT
from tests.support.project import make_project


def _bash_blocks(page: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", page.read_text(), re.S)


@pytest.mark.slow
def test_the_tutorial_commands_run_as_written(tmp_path: Path):
    """Every bash block of docs/tutorial.md, in order, in a project copy with the tiny params."""
    lab = make_project(tmp_path / "lab")
    blocks = _bash_blocks(ROOT / "docs" / "tutorial.md")
    assert len(blocks) >= 4
    outputs = [lab.run("bash", "-euo", "pipefail", "-c", block).stdout for block in blocks]

    best = json.loads((lab.root / "reports" / "best.json").read_text())
    said = json.loads((lab.root / "reports" / "decision.json").read_text())
    assert said["rule"] == "one_se"
    assert said["chosen_entry"].startswith("grid_")
    assert best["answer_ci_low"] <= best["answer_ci_high"]
    choosing = (lab.root / "reports" / "choosing.md").read_text()
    assert "## Decision" in choosing
    assert "Training data changed on purpose" not in choosing  # the wine table is used whole
    assert "## Decision" in outputs[-1]  # the tutorial's last step shows the decision
    meta = json.loads((lab.root / "data" / "prepared" / "meta.json").read_text())
    assert meta["n_features"] == 13 and len(meta["class_names"]) == 3

"""The docs tell the truth: the README's table is the committed report's, and the tutorial's
commands run as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.params import ROOT
from tests.support.project import make_project


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _first_table(lines: list[str]) -> list[list[str]]:
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith("|"):
            rows.append(_cells(line))
        elif rows:
            break
    return rows


def test_the_readme_shows_the_committed_sweep_table_as_it_is():
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"<!-- sweep\.md:start -->\n(.*?)<!-- sweep\.md:end -->", readme, re.S)
    assert shown, "README.md lost its <!-- sweep.md:start/end --> markers"
    readme_rows = _first_table(shown.group(1).splitlines())
    report_rows = _first_table((ROOT / "reports" / "sweep.md").read_text().splitlines())
    width = len(readme_rows[0])
    assert width >= 6
    # Header, every entry in the report's order, every cell as the file writes it.
    assert readme_rows[0] == report_rows[0][:width]
    assert [r[:width] for r in readme_rows[2:]] == [r[:width] for r in report_rows[2:]]


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
    assert best["rule"] == "one_se"
    assert best["chosen_entry"].startswith("grid_")
    assert best["test_error_ci_low"] <= best["test_error_ci_high"]
    choosing = (lab.root / "reports" / "choosing.md").read_text()
    assert "## Decision" in choosing
    assert "Training data changed on purpose" not in choosing  # the wine table is used whole
    assert "## Decision" in outputs[-1]  # the tutorial's last step shows the decision
    meta = json.loads((lab.root / "data" / "prepared" / "meta.json").read_text())
    assert meta["n_features"] == 13 and len(meta["class_names"]) == 3

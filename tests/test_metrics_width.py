"""DVC's metric views in a real 80-column terminal (tmux), with the default params' entry
names: `dvc metrics diff` (and `--all`) of two runs, and docs/params.md's `dvc metrics show`
recipe. (docs/pipeline.md's recipe for one new entry: tests/test_exp_recipes.py.)"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from ruamel.yaml import YAML

from tests.support.params import ROOT, write_yaml
from tests.support.project import Project
from tests.support.terminal import assert_fits, in_terminal

pytestmark = [pytest.mark.slow, pytest.mark.services]  # tmux


def _documented(page: str, starts: str) -> str:
    """The one command line of `page` (under docs/) that starts with `starts`."""
    (line,) = [
        ln for ln in (ROOT / "docs" / page).read_text().splitlines() if ln.startswith(starts)
    ]
    return line


def _default_names(project: Project, rate_of_l2_1e_2: float) -> None:
    """The project's tiny params with the default params.yaml's sweep (its entry names)."""
    params = YAML(typ="safe").load(project.params_path.read_text())
    params["sweep"] = YAML(typ="safe").load((ROOT / "params.yaml").read_text())["sweep"]
    params["sweep"]["l2_1e_2"] = {"l2": rate_of_l2_1e_2}
    write_yaml(project.params_path, params)


def test_metrics_diff_and_the_documented_recipes_fit_80_columns(reproduced: Project):
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux (apt-get install tmux; `python -m pipeline.bootstrap setup`)")
    project = reproduced
    _default_names(project, 0.01)
    project.dvc("repro")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "the default entries")
    _default_names(project, 0.02)  # the second run: one rate changed
    project.dvc("repro")
    names = {p.stem for p in (project.root / "metrics").glob("*.json")}
    assert "hidden_only_1e_2" in names and len(names) == 10

    changed = in_terminal(project, "dvc metrics diff")
    assert_fits(changed)
    assert any(re.match(r"metrics/l2_1e_2\.json\s+val_error\s", line) for line in changed)
    every = in_terminal(project, "dvc metrics diff --all", rows=200)  # 7 x 10 + 12 rows
    assert_fits(every)
    assert every[0].split() == ["Path", "Metric", "HEAD", "workspace", "Change"], every
    assert len(every) > 7 * len(names)  # every entry's every metric is on the screen
    assert any(line.startswith("metrics/hidden_only_1e_2.json") for line in every), every
    # The names are what keeps it narrow: DVC sets the widths from them.
    for path in [*(project.root / "metrics").glob("*.json"), project.root / "reports/best.json"]:
        assert max(map(len, json.loads(path.read_text()))) <= 15, path

    # `dvc metrics show` alone is one column per metric name; the documented recipe is not.
    shown = in_terminal(project, _documented("params.md", "dvc metrics show --json"))
    assert_fits(shown)
    figures = json.loads(project.dvc("metrics", "show", "--json").stdout)[""]["data"]
    for path, found in figures.items():
        wanted = ("best_test_error", "best_val_error", "test_error", "val_error")
        (line,) = [ln for ln in shown if ln.startswith(f"{path} ")]
        assert line.split()[1:] == [f"{k}={v}" for k, v in found["data"].items() if k in wanted]

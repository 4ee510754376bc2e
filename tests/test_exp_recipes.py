"""The README's DVC experiment recipes as a user meets them: `dvc exp run --temp` tries one
entry and leaves the workspace alone, `dvc exp show` recipes show the answer in a real
80-column terminal (tmux), and `dvc exp apply` brings the experiment into the workspace."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil

import pytest
from ruamel.yaml import YAML

from pipeline.choosing.next_rates import EXP_SHOW_BEST
from tests.support.project import Project
from tests.support.terminal import assert_fits, in_terminal

pytestmark = [pytest.mark.slow, pytest.mark.services]  # tmux

TRY = ["-n", "try_2e_2", "-S", "~sweep", "-S", "+sweep={l2_2e_2: {l2: 0.02}}"]


def _snapshot(project: Project) -> dict[str, str]:
    """Every file git tracks or DVC writes outside .git and .dvc, by its SHA-256."""
    skip = {".git", ".dvc", "mlflow.db", "mlflow.db.lock", "mlartifacts"}
    return {
        str(path.relative_to(project.root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.root.rglob("*"))
        if path.is_file()
        and not ({*path.relative_to(project.root).parts} & skip)
        and "__pycache__" not in path.parts
    }


def test_try_one_entry_in_a_temp_experiment_show_it_in_80_columns_and_apply_it(
    reproduced: Project,
):
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux (apt-get install tmux; `python -m pipeline.bootstrap setup`)")
    project = reproduced
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "the sweep")
    before = _snapshot(project)

    # The README's recipe: the experiment runs in a temporary copy; nothing here changes.
    ran = project.dvc("exp", "run", "--temp", *TRY)
    assert "applied to your workspace" not in ran.stdout + ran.stderr
    assert _snapshot(project) == before
    assert project.run("git", "status", "--porcelain").stdout == ""

    # Its answer in 80 columns: each experiment's best entry and errors, best first.
    screen = in_terminal(project, EXP_SHOW_BEST)
    assert_fits(screen)
    header = next(line for line in screen if "Experiment" in line)
    assert header.split() == ["Experiment", "best_entry", "best_test_error", "best_val_error"]
    table = list(csv.DictReader(io.StringIO(project.dvc("exp", "show", "--csv").stdout)))
    tried = next(row for row in table if row["Experiment"] == "try_2e_2")
    (row,) = [line for line in screen if "[try_2e_2]" in line]
    shown = [tried[k] for k in ("best_entry", "best_test_error", "best_val_error")]
    assert row.split()[-3:] == shown, (screen, tried)
    assert shown[0] == "l2_2e_2"

    # One entry across experiments, in 80 columns too.
    entry_screen = in_terminal(
        project, "dvc exp show --drop '.*' --keep 'Experiment|metrics/plain.json:val_error'"
    )
    assert_fits(entry_screen)
    assert any("metrics/plain.json:val_error" in line for line in entry_screen), entry_screen

    # `dvc exp apply` puts the experiment's params, metrics and reports into the workspace.
    project.dvc("exp", "apply", "try_2e_2")
    params = YAML(typ="safe").load(project.params_path.read_text())
    assert list(params["sweep"]) == ["l2_2e_2"]
    assert sorted(p.name for p in (project.root / "metrics").glob("*.json")) == ["l2_2e_2.json"]
    assert project.run("git", "status", "--porcelain").stdout != ""
    # The README's way back to the commit.
    project.run("git", "checkout", "--", ".")
    project.dvc("checkout", "-q")
    project.run("git", "clean", "-fq", "--", "metrics")
    assert _snapshot(project) == before

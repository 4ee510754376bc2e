"""Every lab command README.md, docs/, data/raw/README.md and params.yaml's comments show
(tests/support/docs_commands.py collects them) runs here, in a scratch copy of the project
with tiny params and its own MLflow store: it exits 0, and where the page says what it
leaves unchanged, that is checked on the files. A command that cannot run here carries a
marker in its page; the coverage test lists them. The experiment-heavy pages run in their
own modules, so they spread over pytest's processes: choosing-l2 in
tests/test_docs_commands_grids.py, decision and team in tests/test_docs_commands_queue.py.
docs/pipeline.md's and docs/params.md's run in tests/test_exp_recipes.py, in an 80-column
terminal."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.support.docs_commands import (
    blocks_of,
    claimed_by_blocks,
    commands_of,
    documented_commands,
)
from tests.support.docs_lab import run_documented, snapshot
from tests.support.params import ROOT, VENV_BIN
from tests.support.project import Project, copy_project

# The page whose ```bash blocks each test runs, all of them, in order. Inline spans that no
# block repeats run in `test_readme_and_every_command_named_in_prose`.
PAGE_TESTS = {
    "README.md": "test_docs_commands.py",
    "data/raw/README.md": "test_docs_commands.py",
    "docs/own-data.md": "test_docs_commands.py",
    "docs/tutorial.md": "test_docs_commands.py",
    "docs/regression.md": "test_docs_commands.py",
    "docs/pipeline.md": "test_exp_recipes.py",  # in an 80-column terminal
    "docs/params.md": "test_exp_recipes.py",
    "docs/choosing-l2.md": "test_docs_commands_grids.py",
    "docs/decision.md": "test_docs_commands_queue.py",
    "docs/team.md": "test_docs_commands_queue.py",
    "docs/reuse.md": "test_model_reuse.py",
    "docs/using-the-model.md": "test_docs_using_the_model.py",  # a model server
    "docs/fine-tuning.md": "test_fine_tuning_demo.py",  # with --quick
}
# Spans whose page's test runs them where the page puts them, after its block.
RUN_WITH_THEIR_PAGE = {
    "docs/pipeline.md": ["dvc exp apply try_2e_2"],  # test_exp_recipes.py
    "data/raw/README.md": [
        "dvc exp run --temp -S data.source=csv -S data.csv_path=data/raw/my.csv"
        " -S data.target_column=label"
    ],
}


def test_every_documented_command_is_run_or_marked():
    """A page with a runnable block has a test here; a span no block repeats is run by the
    prose test; every skipped command is listed with its page's reason."""
    commands = documented_commands()
    assert len(commands) > 50
    with_blocks = {c.page for c in commands if c.in_block and not c.skip}
    assert with_blocks <= set(PAGE_TESTS), with_blocks - set(PAGE_TESTS)
    for page, module in PAGE_TESTS.items():  # the module runs the page's blocks
        assert f'"{page}"' in (ROOT / "tests" / module).read_text(), (page, module)
    for page, texts in RUN_WITH_THEIR_PAGE.items():
        on_page = {c.text for c in commands_of(ROOT / page) if not c.skip}
        assert set(texts) <= on_page, (page, set(texts) - on_page)
    skipped = sorted({f"{c.page}: `{c.text}` ({c.skip})" for c in commands if c.skip})
    assert all(c.skip.strip() for c in commands if c.skip)
    warnings.warn("documented commands not run by tests:\n" + "\n".join(skipped), stacklevel=1)


def prose_commands() -> list[str]:
    """The spans no block shows and no page test runs, once each, in reading order."""
    claimed = claimed_by_blocks() | {t for texts in RUN_WITH_THEIR_PAGE.values() for t in texts}
    ordered = [c.text for c in documented_commands() if not c.in_block and not c.skip]
    return [t for i, t in enumerate(ordered) if t not in claimed and t not in ordered[:i]]


def _home(tmp_path: Path, lab: Project) -> Path:
    """A home folder for the docs' `~/...` files, so the user's own is never read."""
    home = tmp_path / "home"
    home.mkdir()
    lab.env["HOME"] = str(home)
    return home


@pytest.mark.slow
def test_readme_and_every_command_named_in_prose(docs_lab_once: Path, tmp_path: Path):
    lab = copy_project(docs_lab_once, tmp_path / "lab")
    (lab.root / ".venv").symlink_to(VENV_BIN.parent)  # the bootstrap's environment, installed
    (lab.root / "requirements.lock").write_bytes((ROOT / "requirements.lock").read_bytes())
    lab.run("git", "add", "requirements.lock")
    lab.run("git", "commit", "-qm", "the lock")
    for text in blocks_of("README.md"):
        run_documented(lab, text)
    committed = snapshot(lab)
    for text in prose_commands():
        run_documented(lab, text)
    # Prose names `dvc repro`, `dvc exp run`, refine and checkouts: on a committed sweep
    # with unchanged params none of them leaves a changed tracked file.
    assert lab.run("git", "status", "--porcelain", "--untracked-files=no").stdout == ""
    assert {k: v for k, v in snapshot(lab).items() if k in committed} == committed


def _own_files(home: Path, lab: Project) -> None:
    """The files the pages copy from `~`: a CSV with a `label` column, a wine table with a
    `cultivar` column, a folder of images per class; and the arrays already in data/raw."""
    from sklearn.datasets import load_iris, load_wine

    load_iris(as_frame=True).frame.rename(columns={"target": "label"}).to_csv(
        home / "my.csv", index=False
    )
    load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"}).to_csv(
        home / "wine.csv", index=False
    )
    for kind in ("cat", "dog"):
        (home / "pets" / kind).mkdir(parents=True)
        (home / "pets" / kind / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    np.savez(lab.root / "data" / "raw" / "arrays.npz", x=np.zeros((4, 2)), y=np.arange(4))


@pytest.mark.slow
def test_own_data_pages(docs_lab_once: Path, tmp_path: Path):
    lab = copy_project(docs_lab_once, tmp_path / "lab")
    _own_files(_home(tmp_path, lab), lab)
    for text in blocks_of("data/raw/README.md"):
        run_documented(lab, text)
    # "commit data/raw/my.csv.dvc and try it in a temporary copy that leaves the workspace"
    lab.run("git", "add", "-A")
    lab.run("git", "commit", "-qm", "my data")
    before = snapshot(lab)
    (try_csv,) = RUN_WITH_THEIR_PAGE["data/raw/README.md"]
    run_documented(lab, try_csv)
    assert snapshot(lab) == before

    for text in blocks_of("docs/own-data.md"):
        run_documented(lab, text)
        if "git commit" in text:
            before = snapshot(lab)
    assert snapshot(lab) == before  # "the workspace stays as it is"
    assert lab.run("git", "status", "--porcelain").stdout == ""
    shown = lab.dvc("exp", "show", "--csv").stdout
    assert any(line.startswith("wine,") for line in shown.splitlines()), shown


@pytest.mark.slow
def test_the_tutorial(docs_lab_once: Path, tmp_path: Path):
    lab = copy_project(docs_lab_once, tmp_path / "lab")
    outputs = [run_documented(lab, text) for text in blocks_of("docs/tutorial.md")]
    best = json.loads((lab.root / "reports" / "best.json").read_text())
    said = json.loads((lab.root / "reports" / "decision.json").read_text())
    assert said["rule"] == "one_se"
    assert said["chosen_entry"].startswith("grid_")
    assert best["answer_ci_low"] <= best["answer_ci_high"]
    choosing = (lab.root / "reports" / "choosing.md").read_text()
    assert "## Decision" in choosing
    assert "Training data changed on purpose" not in choosing  # the wine table is used whole
    assert "## Decision" in outputs[-2]  # `head -n 20 reports/choosing.md`
    meta = json.loads((lab.root / "data" / "prepared" / "meta.json").read_text())
    assert meta["n_features"] == 13 and len(meta["class_names"]) == 3
    # `dvc exp apply wine` brought the experiment's params and results, nothing else changed
    assert lab.run("git", "status", "--porcelain", "--", "builders", "data").stdout == ""
    assert (lab.root / "metrics" / "grid_0_all.json").is_file()


@pytest.mark.slow
def test_the_regression_page(docs_lab_once: Path, tmp_path: Path):
    """The diabetes demo and a user's penguins table, each in a temporary copy: the
    experiments exist with regression figures and the workspace stays as it was."""
    from benchmarks.regression_tables import write_tables

    lab = copy_project(docs_lab_once, tmp_path / "lab")
    write_tables(_home(tmp_path, lab))  # ~/penguins.csv, as the page copies it
    before = snapshot(lab)
    for text in blocks_of("docs/regression.md"):
        run_documented(lab, text)
        if "git commit" in text:
            before = snapshot(lab)
    assert snapshot(lab) == before
    assert lab.run("git", "status", "--porcelain").stdout == ""
    # The diabetes experiment is based on the commit before the penguins one: -A lists both.
    listed = lab.dvc("exp", "list", "--all-commits", "--name-only").stdout.split()
    assert {"diabetes", "penguins"} <= set(listed), listed
    header = lab.dvc("exp", "show", "--csv").stdout.splitlines()[0]
    assert "val_rmse" in header and "val_error" in header  # the workspace's digits sweep too

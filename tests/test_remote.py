"""A DVC remote (a local folder here, S3 for teams): push, then a fresh clone pulls the
prepared data and models and has nothing to reproduce. The project pushed is a copy of the
session's trained one: no training here."""

from __future__ import annotations

import pytest

from tests.support.project import ALWAYS_RUN, Project, mlflow_runs, parent_runs, ran_stages

pytestmark = pytest.mark.slow


def test_a_fresh_clone_pulls_data_and_models_and_has_nothing_to_rerun(reproduced: Project):
    project = reproduced
    remote = project.root.parent / "remote"
    project.dvc("remote", "add", "-d", "shared", str(remote))
    project.dvc("push")
    # What a teammate needs besides the remote: dvc.lock, and the uncached metrics/report.
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "sweep results")

    clone = Project(project.root.parent / "clone")
    project.run("git", "clone", "-q", str(project.root), str(clone.root))
    assert not (clone.root / "models" / "plain").exists()
    clone.dvc("pull")
    for name in (
        "data/prepared/train.parquet",
        "models/plain/model.keras",
        "models/plain/history.csv",
        "models/sweep.json",
    ):
        assert (clone.root / name).read_bytes() == (project.root / name).read_bytes()
    again = clone.dvc("repro")
    # Only the stages that run on every `dvc repro`: `record` finds no run to complete, and
    # `register` gives the pulled chosen model its version in the clone's own store.
    assert ran_stages(again.stdout) == ALWAYS_RUN, again.stdout
    assert parent_runs(mlflow_runs(clone)) == []  # nothing trained

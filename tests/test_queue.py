"""Parallel experiments with `dvc queue` on the default local store: every run recorded, each
experiment's `train` as one parent run with its model run nested under it."""

from __future__ import annotations

import pytest

from tests.support.project import (
    Project,
    check_queued_runs,
    one_entry_project,
    run_queued_experiments,
)

pytestmark = pytest.mark.slow

RATES = (0.0, 0.01, 0.1)  # three experiments, two workers: one waits in the queue


def test_queued_experiments_on_a_new_local_store_all_land(project: Project):
    one_entry_project(project)
    assert not (project.root / "mlflow.db").exists()  # the workers create it together
    run_queued_experiments(project, [f"sweep.plain.l2={rate}" for rate in RATES], jobs=2)

    from mlflow.tracking import MlflowClient

    check_queued_runs(MlflowClient(tracking_uri=project.tracking_uri()), "l2-lab", RATES)
    shown = project.dvc("exp", "show", "--json").stdout
    assert all(f"exp{n}" in shown for n in range(len(RATES)))

"""A team's tracking server: `mlflow server` on PostgreSQL with served artifacts, started
here on loopback. The pipeline and parallel experiments record everything there over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import contracts
from tests.support.project import (
    Project,
    check_queued_runs,
    model_runs,
    one_entry_project,
    run_queued_experiments,
)
from tests.support.services import mlflow_server, postgres_server

pytestmark = [pytest.mark.slow, pytest.mark.services]  # PostgreSQL


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(tracking URI, PostgreSQL URI, artifact folder) of a running server."""
    folder = tmp_path_factory.mktemp("server")
    with (
        postgres_server() as database,
        mlflow_server(database, folder / "artifacts", folder / "server.log", workers=2) as uri,
    ):
        yield uri, database, folder / "artifacts"


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_pipeline_records_every_run_metric_and_model_on_the_server(
    project: Project, server: tuple[str, str, Path]
):
    uri, database, artifacts = server
    project.env["MLFLOW_TRACKING_URI"] = uri
    project.dvc("repro")
    assert not (project.root / "mlflow.db").exists()  # nothing went to the local store

    client = _client(uri)
    experiment = client.get_experiment_by_name("l2-lab")
    every_run = client.search_runs([experiment.experiment_id])
    runs = model_runs(every_run)
    assert sorted(r.info.run_name for r in runs) == ["layerwise", "plain"]
    assert {r.info.status for r in every_run} == {"FINISHED"}
    (parent,) = (r for r in every_run if r.data.tags.get("sweep") == "parent")
    digest = contracts.models_digest(project.root / "models")
    assert parent.data.tags[contracts.MODELS_DIGEST_TAG] == digest
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert "compare-runs" in parent.data.tags["mlflow.note.content"]  # record reached it
    for run in runs:
        name = run.info.run_name
        details = json.loads((project.root / "evaluation" / f"{name}.json").read_text())
        headline = json.loads((project.root / "metrics" / f"{name}.json").read_text())
        # evaluation/ holds every digit; MLflow and the DVC metrics file the same 5 digits.
        full = details["seeds"][0]["metrics"]["test_error"]
        assert run.data.metrics["test_error"] == contracts.rounded(full) == headline["test_error"]
        assert len(client.get_metric_history(run.info.run_id, "epoch_loss")) == 4

    # The model travelled over HTTP into the served artifact folder and loads back from it.
    import keras
    import mlflow
    import mlflow.keras

    from pipeline.datasets import prepared

    mlflow.set_tracking_uri(uri)
    (plain,) = (r for r in runs if r.info.run_name == "plain")
    logged = mlflow.keras.load_model(plain.data.tags["model_uri"])
    saved = keras.saving.load_model(project.root / "models" / "plain" / "model.keras")
    features = prepared.read_split(project.root / "data" / "prepared", "test").features
    np.testing.assert_allclose(
        logged.predict(features, verbose=0), saved.predict(features, verbose=0), rtol=1e-6
    )
    assert list(artifacts.rglob("model.weights.h5"))  # on the server's disk, not the project's

    # The server's store is PostgreSQL itself.
    import psycopg

    with psycopg.connect(database) as connection:
        (count,) = connection.execute(
            "select count(*) from runs where status = 'FINISHED'"
        ).fetchone()
    assert count >= 3  # the sweep's parent and its two model runs


def test_queued_experiments_all_land_on_the_server(project: Project, server: tuple[str, str, Path]):
    uri, _, _ = server
    one_entry_project(project, experiment="l2-lab-queue")
    project.env["MLFLOW_TRACKING_URI"] = uri
    rates = (0.0, 0.01)  # both at once; decision.md's three wait in turn (test_docs_commands_queue)
    run_queued_experiments(project, [f"sweep.plain.l2={rate}" for rate in rates], jobs=2)
    check_queued_runs(_client(uri), "l2-lab-queue", rates)
    assert not (project.root / "mlflow.db").exists()

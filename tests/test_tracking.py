"""Where runs go: the store path rules, and how params are flattened for MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import tracking


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    return monkeypatch


def test_default_store_is_at_the_project_root(clean_env, tmp_path: Path):
    clean_env.chdir(tmp_path)
    assert tracking.tracking_uri(tracking.project_root()) == f"sqlite:///{tmp_path}/mlflow.db"


def test_queued_experiments_log_to_the_original_repository(clean_env, tmp_path: Path):
    # `dvc exp run --queue` runs in a temporary copy and sets DVC_ROOT to the real repo.
    original, copy = tmp_path / "repo", tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmp1"
    copy.mkdir(parents=True)
    clean_env.chdir(copy)
    clean_env.setenv("DVC_ROOT", str(original))
    assert tracking.tracking_uri(tracking.project_root()) == f"sqlite:///{original}/mlflow.db"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///runs/store.db", "sqlite:///{root}/runs/store.db"),
        ("sqlite:////abs/store.db", "sqlite:////abs/store.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("postgresql://user@db/mlflow", "postgresql://user@db/mlflow"),
    ],
)
def test_relative_store_paths_are_anchored_at_the_root(clean_env, tmp_path, uri, expected):
    clean_env.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking.tracking_uri(tmp_path) == expected.format(root=tmp_path)


def test_params_are_flattened_with_dotted_names():
    flat = tracking.flatten({"l2_rate": {"hidden_1": 0.01, "output": 0.0}, "model": {"units": [8]}})
    assert flat == {"l2_rate.hidden_1": "0.01", "l2_rate.output": "0.0", "model.units": "[8]"}


def test_default_store_keeps_artifacts_beside_the_database(clean_env, tmp_path: Path):
    # From a temporary copy (a queued experiment), artifacts must still go to the real repo.
    original, copy = tmp_path / "repo", tmp_path / "copy"
    original.mkdir()
    copy.mkdir()
    clean_env.chdir(copy)
    clean_env.setenv("DVC_ROOT", str(original))
    experiment_id = tracking.use_experiment("artifacts-here")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{original}/mlflow.db")
    location = client.get_experiment(experiment_id).artifact_location
    assert location == (original / "mlartifacts").as_uri()

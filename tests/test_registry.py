"""The Model Registry side of `register` against a real MLflow store: one version per key,
created with every tag, the alias moved only when asked, earlier versions kept, the folder
logged beside the sweep that made the models, a moved project's versions re-anchored, and an
unreachable server refused in one line. (The stage end to end: test_registry_pipeline.py.)"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.errors import TrackingError
from pipeline.tracking import records, registry, store
from tests.support.params import ROOT

NAME, ALIAS = "l2-lab", "chosen"


@pytest.fixture
def lab(monkeypatch, tmp_path: Path) -> Path:
    """A project folder with the default store, the working directory of the test."""
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "lab"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def _folder(root: Path, text: str) -> Path:
    folder = root / "chosen"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "MLmodel").write_text(text)
    return folder


def _register(root: Path, key: str, *, move_alias: bool = True, digest: str = "no-sweep"):
    tags = {"entry": "plain", "rule": "min", "git_commit": "abc"}
    return registry.register_folder(
        _folder(root, key), NAME, key, tags, "l2-lab", digest,
        description="plain, chosen by min", alias=ALIAS, move_alias=move_alias,
    )  # fmt: skip


def _client(root: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")


def test_one_version_per_key_and_the_alias_follows_the_workspace(lab: Path):
    first = _register(lab, "key-one")
    assert (first.version, first.new, first.alias_version) == (1, True, 1)
    again = _register(lab, "key-one")
    assert (again.version, again.new, again.alias_version) == (1, False, 1)

    client = _client(lab)
    version = client.get_model_version(NAME, "1")
    assert version.tags == {"entry": "plain", "rule": "min", "git_commit": "abc",
                            registry.KEY_TAG: "key-one"}  # fmt: skip
    assert version.description == "plain, chosen by min"

    second = _register(lab, "key-two")
    assert (second.version, second.new, second.alias_version) == (2, True, 2)
    assert int(client.get_model_version_by_alias(NAME, ALIAS).version) == 2
    # MLflow moves an alias: the earlier version keeps its number and loses it.
    assert client.get_model_version(NAME, "1").aliases == []
    assert client.get_model_version(NAME, "1").tags[registry.KEY_TAG] == "key-one"

    elsewhere = _register(lab, "key-three", move_alias=False)
    assert (elsewhere.version, elsewhere.new, elsewhere.alias_version) == (3, True, 2)
    assert int(client.get_model_version_by_alias(NAME, ALIAS).version) == 2
    # Back to the first chosen model: its version again, not a fourth.
    back = _register(lab, "key-one")
    assert (back.version, back.new, back.alias_version) == (1, False, 1)
    versions = client.search_model_versions(f"name = '{NAME}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]


def test_the_folder_sits_on_the_sweep_that_made_the_models_else_on_a_run_of_its_own(lab: Path):
    from pipeline.tracking import runs

    experiment_id = store.use_experiment("l2-lab")
    with runs.sweep_runs(experiment_id, ["plain"], {}) as sweep:
        records.set_tags(sweep.parent_id, {"models_digest": "these-models"})
    _register(lab, "key-one", digest="these-models")
    client = _client(lab)
    version = client.get_model_version(NAME, "1")
    assert version.run_id == sweep.parent_id
    source = f"{client.get_run(sweep.parent_id).info.artifact_uri}/chosen/key-one"
    assert version.source == source
    assert {a.path for a in client.list_artifacts(sweep.parent_id, "chosen/key-one")} == {
        "chosen/key-one/MLmodel"
    }
    before = len(client.search_runs([experiment_id]))

    _register(lab, "key-two", digest="models-no-run-made")  # restored by DVC, say
    runs_now = client.search_runs([experiment_id])
    assert len(runs_now) == before + 1
    own = client.get_run(client.get_model_version(NAME, "2").run_id)
    assert own.info.run_name == "chosen plain" and own.info.status == "FINISHED"
    assert own.data.tags["chosen_model"] == "true"
    downloaded = Path(client.download_artifacts(own.info.run_id, "chosen/key-two"))
    assert (downloaded / "MLmodel").read_text() == "key-two"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_is_one_line_and_the_store_keeps_what_it_had(lab, monkeypatch):
    _register(lab, "key-one")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(TrackingError) as refused:
        _register(lab, "key-two")
    assert "\n" not in str(refused.value)
    assert "is unreachable" in str(refused.value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    versions = _client(lab).search_model_versions(f"name = '{NAME}'")
    assert [(int(v.version), v.tags[registry.KEY_TAG]) for v in versions] == [(1, "key-one")]


# In its own process, as a stage registers: MLflow caches locations per process, and a
# project is copied or moved between stage processes, never during one.
REGISTER = """
from pathlib import Path
from pipeline.tracking import registry
Path("chosen").mkdir()
Path("chosen/MLmodel").write_text("registered before the move")
registry.register_folder(Path("chosen"), "l2-lab", "key-one", {}, "l2-lab", "none",
                         description="", alias="chosen", move_alias=True)
"""


@pytest.mark.parametrize("how", ["copied", "moved"])
def test_a_moved_projects_registered_versions_still_load(lab: Path, monkeypatch, how: str):
    first, second = lab.parent / "a" / "lab", lab.parent / "b" / "lab"
    first.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    env["PYTHONPATH"] = str(ROOT)
    made = subprocess.run(
        [sys.executable, "-c", REGISTER], cwd=first, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    second.parent.mkdir()
    (shutil.copytree if how == "copied" else shutil.move)(first, second)
    if how == "copied":
        shutil.rmtree(first)  # what the copy names must be its own, not the original's
    monkeypatch.chdir(second)
    store.connect()

    client = _client(second)
    version = client.get_model_version("l2-lab", "1")
    inside = (second / "mlartifacts").as_uri() + "/"
    assert version.source.startswith(inside), version.source
    assert client.get_model_version_download_uri("l2-lab", "1").startswith(inside)
    from mlflow.artifacts import download_artifacts

    got = Path(download_artifacts("models:/l2-lab@chosen", dst_path=str(lab / "got")))
    assert (got / "MLmodel").read_text() == "registered before the move"

"""Shared fixtures: the real params.yaml, shrunk so real Keras/DVC/MLflow runs take seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def tiny_params() -> dict:
    """The project's params.yaml with a small model, few epochs and a two-entry sweep."""
    params = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
    params["data"]["digits"].update(train_subset=80, label_noise=0.2)
    params["model"]["hidden_units"] = [16, 16]
    params["train"].update(epochs=4, batch_size=16)
    params["sweep"] = {"plain": {"l2": 0.0}, "layerwise": {"l2": [0.01, 0.001, 0.0]}}
    return params


def write_yaml(path: Path, data: dict) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with path.open("w") as handle:
        yaml.dump(data, handle)


def prepared_splits(folder: Path, **data_settings) -> dict:
    """The tiny params' splits (with `data_settings` applied), prepared under `folder`."""
    from pipeline.datasets import prepared
    from pipeline.prepare import prepare

    params = tiny_params()
    params["data"].update(data_settings)
    write_yaml(folder / "params.yaml", params)
    prepare(folder / "params.yaml", folder / "prepared")
    return {name: prepared.read_split(folder / "prepared", name) for name in prepared.SPLITS}


def fit_alone(model, splits: dict, *, entry: str, seed: int, epochs: int, weight_decay=0.0):
    """One model trained as a process of its own trains it (support_modeling.train_alone,
    learning rate 0.01, batch 16, as the tower tests' fused runs); its per-epoch metrics."""
    from support_modeling import train_alone

    from pipeline.config.schema import TrainConfig

    history: list[dict[str, float]] = []
    train_alone(
        model,
        splits["train"],
        splits["val"],
        TrainConfig(learning_rate=0.01, batch_size=16, epochs=epochs),
        seed=seed,
        entry=entry,
        weight_decay=weight_decay,
        sinks=[lambda epoch, metrics: history.append(metrics)],
    )
    return history


def fit_fused(inputs: list, splits: dict, *, epochs: int, sinks=()):
    """`towers.fit_towers` of `inputs` with `fit_alone`'s settings; returns its outcome."""
    from pipeline.config.schema import TrainConfig
    from pipeline.modeling.towers import fit_towers

    settings = TrainConfig(learning_rate=0.01, batch_size=16, epochs=epochs)
    return fit_towers(inputs, splits["train"], splits["val"], settings, sinks=list(sinks))


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    write_yaml(path, tiny_params())
    return path


class Project:
    """A throwaway copy of the project (git + DVC) with its own MLflow store."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
        }
        self.env.pop("MLFLOW_TRACKING_URI", None)  # the default store, at self.root
        self.env.pop("DVC_ROOT", None)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=900
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(VENV_BIN / "dvc"), *args, check=check)

    @property
    def params_path(self) -> Path:
        return self.root / "params.yaml"

    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"


def make_project(root: Path) -> Project:
    """A fresh copy of the code at `root`, committed to git, with DVC initialised."""
    root.mkdir(parents=True)
    shutil.copytree(
        ROOT / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("dvc.yaml", ".gitignore", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "data" / "raw", root / "data" / "raw")  # prepare depends on it
    shutil.copytree(ROOT / "builders", root / "builders")  # train and evaluate depend on it
    write_yaml(root / "params.yaml", tiny_params())
    lab = Project(root)
    lab.run("git", "init", "-q")
    lab.dvc("init", "-q")
    lab.dvc("config", "core.analytics", "false")
    lab.run("git", "add", "-A")
    lab.run("git", "commit", "-q", "-m", "test project")
    return lab


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "lab")


@pytest.fixture(scope="session")
def reproduced_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One tiny project on which `dvc repro` ran, shared by the session, and that repro's
    stdout. Never changed: tests work on copies (`reproduced`)."""
    lab = make_project(tmp_path_factory.mktemp("reproduced") / "lab")
    return lab.root, lab.dvc("repro").stdout


@pytest.fixture
def reproduced(reproduced_once: tuple[Path, str], tmp_path: Path) -> Project:
    """A copy of a project after its first `dvc repro`, with its git repository, DVC cache
    and run cache, and its MLflow store (whose artifact locations still name the original
    folder until a stage re-anchors them, as in a project a user copied)."""
    root = tmp_path / "lab"
    shutil.copytree(reproduced_once[0], root, symlinks=True)
    return Project(root)


# `record` completes the MLflow runs from the files on every `dvc repro` (always_changed).
ALWAYS_RUN = {"record": "ran"}
UP_TO_DATE = {"record": ["always changed"]}  # `dvc status --json` with nothing to redo


def ran_stages(output: str) -> dict[str, str]:
    """stage name -> "ran" or "restored" (from DVC's run cache), from `dvc repro` stdout."""
    found = {}
    for line in output.splitlines():
        if line.startswith("Running stage '"):
            found[line.split("'")[1]] = "ran"
        elif line.startswith("Stage '") and "is cached" in line:
            found[line.split("'")[1]] = "restored"
    return found


def mlflow_runs(project: Project, experiment: str = "l2-lab") -> list:
    """Every run of `experiment` in the project's store: sweep parents and model runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri())
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id], max_results=1000)


def parent_runs(runs: list) -> list:
    """The sweeps' parent runs, one per execution of `train`."""
    return [run for run in runs if run.data.tags.get("sweep") == "parent"]


def model_runs(runs: list) -> list:
    """The runs that trained a model, without the sweeps' parent runs."""
    return [run for run in runs if run.data.tags.get("sweep") != "parent"]


def parent_of_models(project: Project, runs: list):
    """The parent run that made the project's models/: the latest one tagged with their
    digest (a rerun with the same params makes the same models)."""
    from pipeline.core import contracts

    digest = contracts.models_digest(project.root / "models")
    tag = contracts.MODELS_DIGEST_TAG
    tagged = [run for run in parent_runs(runs) if run.data.tags.get(tag) == digest]
    assert tagged, f"no parent run is tagged {tag}={digest}"
    return max(tagged, key=lambda run: run.info.start_time)


def children_of(runs: list, parent_id: str) -> list:
    return [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent_id]

"""Throwaway copies of the project (git + DVC + their own MLflow store), and what the tests
read back from them: the stages `dvc repro` ran, the MLflow runs it left."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from ruamel.yaml import YAML

from tests.support.params import ROOT, VENV_BIN, tiny_params, write_yaml

# `record` completes the MLflow runs from the files, and `register` finds (or makes) the
# chosen model's registry version, on every `dvc repro` (always_changed).
ALWAYS_RUN = {"record": "ran", "register": "ran"}
UP_TO_DATE = {"record": ["always changed"], "register": ["always changed"]}  # `dvc status --json`


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
        # Each project its own model store, at its root, read unless a test says otherwise.
        self.env.pop("L2LAB_MODEL_STORE", None)
        self.env.pop("L2LAB_RETRAIN", None)

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


def make_project(root: Path, params: dict | None = None) -> Project:
    """A fresh copy of the code at `root` with `params` (default: the tiny params),
    committed to git, with DVC initialised."""
    root.mkdir(parents=True)
    shutil.copytree(
        ROOT / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("dvc.yaml", ".gitignore", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "data" / "raw", root / "data" / "raw")  # prepare depends on it
    shutil.copytree(ROOT / "builders", root / "builders")  # train and evaluate depend on it
    shutil.copytree(ROOT / "pretrained", root / "pretrained")  # start models, as builders
    write_yaml(root / "params.yaml", tiny_params() if params is None else params)
    lab = Project(root)
    lab.run("git", "init", "-q")
    lab.dvc("init", "-q")
    lab.dvc("config", "core.analytics", "false")
    lab.run("git", "add", "-A")
    lab.run("git", "commit", "-q", "-m", "test project")
    return lab


def copy_project(source: Path, root: Path) -> Project:
    """A copy of the project at `source` with its git repository, DVC cache and run cache,
    and its MLflow store (whose artifact locations still name `source` until a stage
    re-anchors them, as in a project a user copied)."""
    shutil.copytree(source, root, symlinks=True)
    return Project(root)


def ran_stages(output: str) -> dict[str, str]:
    """stage name -> "ran" or "restored" (from DVC's run cache), from `dvc repro` stdout."""
    found = {}
    for line in output.splitlines():
        if line.startswith("Running stage '"):
            found[line.split("'")[1]] = "ran"
        elif line.startswith("Stage '") and "is cached" in line:
            found[line.split("'")[1]] = "restored"
    return found


def models_hash(project: Project) -> str:
    """The hash `dvc.lock` records for `train`'s models: equal hashes, the same models."""
    lock = YAML(typ="safe", pure=True).load((project.root / "dvc.lock").read_text())
    return lock["stages"]["train"]["outs"][0]["md5"]


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


def one_entry_project(project: Project, experiment: str = "l2-lab") -> None:
    """The test project with one sweep entry and two epochs: a queued experiment is cheap."""
    params = YAML(typ="safe").load(project.params_path.read_text())
    params["base"]["experiment"] = experiment
    params["train"]["epochs"] = 2
    params["sweep"] = {"plain": {"l2": 0.0}}
    write_yaml(project.params_path, params)
    project.run("git", "commit", "-qam", "one entry")


def check_queued_runs(client, experiment: str, rates: tuple[float, ...]) -> list:
    """One model run per queued experiment of `one_entry_project`, each nested under its own
    experiment's sweep parent."""
    n = len(rates)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    every_run = client.search_runs([found.experiment_id], max_results=1000)
    runs = model_runs(every_run)
    parents = {r.info.run_id: r for r in every_run if r.data.tags.get("sweep") == "parent"}
    assert len(runs) == n
    assert len(parents) == n
    assert {r.info.status for r in every_run} == {"FINISHED"}
    assert len({r.data.tags["dvc_exp_name"] for r in runs}) == n
    for run in runs:
        parent = parents[run.data.tags["mlflow.parentRunId"]]
        assert parent.data.tags["dvc_exp_name"] == run.data.tags["dvc_exp_name"]
        assert parent.info.run_name == f"sweep {run.data.tags['dvc_exp_name']}"
        assert run.info.run_name == run.data.tags["entry"] == "plain"
    assert all("test_error" in r.data.metrics for r in runs)  # evaluate reached each run
    assert sorted(float(r.data.params["l2"]) for r in runs) == sorted(rates)
    return runs


def run_queued_experiments(project: Project, settings: list[str], jobs: int = 2) -> str:
    """Queue one `dvc exp run` per `-S` setting, run them `jobs` at a time, wait for all.

    Returns `dvc queue status`; fails with the queue's logs if any experiment failed.
    """
    for number, setting in enumerate(settings):
        project.dvc("exp", "run", "--queue", "--name", f"exp{number}", "-S", setting)
    project.dvc("queue", "start", "-j", str(jobs))
    deadline = time.monotonic() + 600
    while True:
        status = project.dvc("queue", "status").stdout
        finished = sum(status.count(word) for word in ("Success", "Failed"))
        if finished >= len(settings):
            break
        assert time.monotonic() < deadline, status
        time.sleep(3)
    if "Failed" in status:
        logs = [
            project.dvc("queue", "logs", f"exp{n}", check=False).stdout[-3000:]
            for n in range(len(settings))
        ]
        raise AssertionError(f"{status}\n" + "\n".join(logs))
    return status

"""The benchmark's shared harness: params, task processes, a throwaway project, servers."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ruamel.yaml import YAML

from tests.support import services

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("sweep", "fused", "mlflow", "memory")
OLD_LAYOUT = "b45d537"  # the last commit with one train/evaluate stage pair per entry
EXTRA_SEED_BASE = 43

# A stage process is recorded by this stand-in for `python`, first on PATH under `dvc repro`:
# wall time and peak RSS of each stage, without touching dvc.yaml.
_SHIM = """#!{python}
import json, resource, subprocess, sys, time
started = time.time()
code = subprocess.call([{python!r}, *sys.argv[1:]])
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open({log!r}, "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "seconds": time.time() - started,
                          "peak_rss_mib": peak_kib / 1024, "code": code}}) + "\\n")
sys.exit(code)
"""


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    return yaml


def write_params(path: Path, params: dict) -> None:
    with path.open("w") as handle:
        _yaml().dump(params, handle)


def shrink_params(params: dict, epochs: int | None = None, entries: int | None = None) -> dict:
    """A copy of `params` with fewer epochs and/or only the first `entries` sweep entries."""
    params = json.loads(json.dumps(params))
    if epochs is not None:
        params["train"]["epochs"] = epochs
    if entries is not None:
        params["sweep"] = dict(list(params["sweep"].items())[:entries])
    return params


def with_extra_seeds(params: dict, n: int) -> dict:
    """A copy of `params` that trains every entry again with `n` more seeds."""
    params = json.loads(json.dumps(params))
    params["base"]["repeat_seeds"] = [EXTRA_SEED_BASE + i for i in range(n)]
    return params


def bench_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("DVC_ROOT", None)
    env.update(extra)
    return env


def run_task(task: str, env: dict | None = None, **options: object) -> dict:
    """Run `benchmarks.tasks <task>` in a fresh process; returns its JSON and wall time."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = Path(handle.name)
    argv = [sys.executable, "-m", "benchmarks.tasks", task, "--result", str(result)]
    for key, value in options.items():
        if value is True:
            argv.append(f"--{key}")
        elif value not in (None, False):
            argv += [f"--{key}", str(value)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env or bench_env())
    try:
        if done.returncode != 0:
            raise RuntimeError(f"task {task} failed:\n{done.stderr[-3000:]}")
        payload = json.loads(result.read_text())
    finally:
        result.unlink(missing_ok=True)
    payload["process_s"] = time.perf_counter() - started
    return payload


def stage_name(argv: Sequence[str]) -> str:
    """`-m pipeline.train --entry l2_0 ...` -> `train@l2_0`; `-m pipeline.train ...` -> `train`."""
    module = argv[argv.index("-m") + 1].removeprefix("pipeline.") if "-m" in argv else argv[0]
    if "--entry" in argv:
        return f"{module}@{argv[argv.index('--entry') + 1]}"
    return module


class Project:
    """A throwaway git + DVC copy of the code at `source` (this checkout or an old worktree),
    with its own MLflow store and a stage shim."""

    def __init__(self, root: Path, source: Path, params: dict):
        self.root = root
        self.stage_log = root.parent / f"{root.name}-stages.jsonl"
        shim_dir = root.parent / f"{root.name}-shim"
        shim_dir.mkdir()
        shim = shim_dir / "python"
        shim.write_text(_SHIM.format(python=sys.executable, log=str(self.stage_log)))
        shim.chmod(0o755)
        venv_bin = Path(sys.executable).parent
        self.env = bench_env(
            PATH=os.pathsep.join([str(shim_dir), str(venv_bin), os.environ.get("PATH", "")]),
            GIT_AUTHOR_NAME="bench",
            GIT_AUTHOR_EMAIL="bench@example.com",
            GIT_COMMITTER_NAME="bench",
            GIT_COMMITTER_EMAIL="bench@example.com",
        )
        self.dvc_bin = str(venv_bin / "dvc")
        root.mkdir()
        shutil.copytree(
            source / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
        )
        for name in ("dvc.yaml", ".gitignore", "pyproject.toml"):
            shutil.copy(source / name, root / name)
        shutil.copytree(source / "data" / "raw", root / "data" / "raw")  # prepare's dep
        if (source / "builders").is_dir():  # a dependency of train (not in older layouts)
            shutil.copytree(source / "builders", root / "builders")
        write_params(root / "params.yaml", params)
        self.run("git", "init", "-q")
        self.dvc("init", "-q")
        self.dvc("config", "core.analytics", "false")
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", "bench project")

    def run(self, *argv: str) -> float:
        """Run a command in the project; returns its wall time."""
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=self.root, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
        return time.perf_counter() - started

    def dvc(self, *args: str) -> float:
        return self.run(self.dvc_bin, *args)

    def take_stage_records(self) -> list[dict]:
        """The stage processes run since the last call: name, seconds, peak RSS."""
        if not self.stage_log.exists():
            return []
        records = [json.loads(line) for line in self.stage_log.read_text().splitlines()]
        self.stage_log.unlink()
        for record in records:
            record["stage"] = stage_name(record.pop("argv"))
        return records


@contextlib.contextmanager
def old_worktree(revision: str, folder: Path) -> Iterator[Path]:
    """`revision` of this repository checked out at `folder`; removed again on exit."""
    git = ["git", "-C", str(ROOT)]
    subprocess.run(
        [*git, "worktree", "add", "--detach", "-q", str(folder), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], capture_output=True)
        subprocess.run([*git, "worktree", "prune"], capture_output=True)


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with its own store, serving artifacts; yields its URI."""
    folder.mkdir(parents=True, exist_ok=True)
    backend = f"sqlite:///{folder / 'server.db'}"
    with services.mlflow_server(
        backend, folder / "artifacts", folder / "server.log", env=bench_env()
    ) as uri:
        yield uri


def machine() -> dict:
    """What the figures were measured on (no paths, no host names)."""

    def read(path: str) -> list[str]:
        try:
            return Path(path).read_text().splitlines()
        except OSError:
            return []

    cpuinfo = read("/proc/cpuinfo")
    model = next((x.split(":", 1)[1].strip() for x in cpuinfo if "model name" in x), "")
    import keras
    import mlflow
    import psutil

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "mlflow": mlflow.__version__,
        "load_average_at_start": os.getloadavg(),
    }

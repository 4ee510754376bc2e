"""The lab itself on one target, in a temporary copy of this project (git + DVC, its own
MLflow store and model store): the target's rows under data/raw/, the source model under
pretrained/, the demo's params.yaml, then `dvc repro`. This checkout is only read."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ruamel.yaml import YAML

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("pipeline", "builders", "dvc.yaml", ".gitignore", "pyproject.toml")
VENV_BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the stages' python
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "fine-tuning demo",
        "GIT_AUTHOR_EMAIL": "demo@example.com",
        "GIT_COMMITTER_NAME": "fine-tuning demo",
        "GIT_COMMITTER_EMAIL": "demo@example.com",
    }
    # The copy's own stores, at its root: nothing of the user's MLflow or models is touched.
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "L2LAB_MODEL_STORE", "L2LAB_RETRAIN"):
        env.pop(name, None)
    return env


def _run(root: Path, *argv: str) -> str:
    done = subprocess.run(argv, cwd=root, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed in {root}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def make_lab(root: Path, params: dict, files: dict[str, Path]) -> Path:
    """A committed git + DVC project at `root` with this project's code, `params` as its
    params.yaml and `files` (path in the lab -> file to copy there)."""
    root.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    for folder in ("data/raw", "pretrained"):  # dependencies of the stages in dvc.yaml
        (root / folder).mkdir(parents=True, exist_ok=True)
    for inside, source in files.items():
        shutil.copy(source, root / inside)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with (root / "params.yaml").open("w") as handle:
        yaml.dump(params, handle)
    _run(root, "git", "init", "-q")
    _run(root, str(VENV_BIN / "dvc"), "init", "-q")
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-q", "-m", "fine-tuning demo")
    return root


def reproduce(root: Path, label: str) -> float:
    """`dvc repro` in the lab, each stage logged as it starts; its wall time in seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(VENV_BIN / "dvc"), "repro"],
        cwd=root,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("Running stage '"):
            log.info("%s: %s (%.0f s)", label, line.split("'")[1], time.perf_counter() - started)
    if process.wait() != 0:
        raise RuntimeError(f"dvc repro failed for the {label} target:\n{''.join(output[-60:])}")
    return time.perf_counter() - started


def read_params(path: Path) -> dict:
    return YAML(typ="safe", pure=True).load(path.read_text())

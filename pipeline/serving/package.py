"""The chosen model as an MLflow pyfunc folder that carries its own code: the same inputs
give the same bytes, so a DVC output holding it reproduces.

What MLflow adds on its own that would differ on every run or machine is taken out of
MLmodel: its creation time, a random model id, and the absolute paths the artifacts and
the model's code file were copied from. The requirements are pinned to the installed
versions (never inferred by loading the model in a subprocess); the Python version is the
project's (major.minor), not the patch version of the machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import yaml

from pipeline.core.errors import DataError
from pipeline.core.files import publish_dir, staging_dir
from pipeline.serving.model import BUILDER, MODEL, PREPARATION

# What LabModel imports of the lab, and all of it: the folder's `code/pipeline/`.
CODE_FILES = (
    "__init__.py",
    "core/__init__.py",
    "core/errors.py",
    "core/preparation.py",
    "core/runtime.py",
    "core/task.py",
    "serving/__init__.py",
    "serving/model.py",
    "serving/predictor.py",
)
SERVED_FILE = "served.py"  # the "model from code" MLflow runs to load LabModel
REQUIREMENTS = ("mlflow", "keras", "tensorflow", "numpy", "pandas")
# MLmodel keys MLflow fills with the time or a random id.
UNSTABLE_KEYS = ("utc_time_created", "model_uuid")
PROGRESS_BARS = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def package_model(
    keras_file: Path,
    preparation_file: Path,
    out_dir: Path,
    builder_file: Path | None = None,
    metadata: dict | None = None,
) -> None:
    """Write `out_dir` as an MLflow pyfunc model folder (`mlflow.pyfunc.load_model`) that
    predicts on a user's raw rows: the Keras file, the preparation, a user's builder file
    when the model has one, the lab code that applies them, and `metadata` (plain YAML
    values: text, numbers, lists, mappings) in MLmodel. `out_dir` is replaced whole, once
    the new folder is complete."""
    lab = Path(__file__).resolve().parents[1]  # the `pipeline` package
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    artifacts = {MODEL: keras_file, PREPARATION: preparation_file}
    if builder_file is not None:
        artifacts[BUILDER] = builder_file
    for path in artifacts.values():
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file to package; run `dvc repro` to make it")
    staging = staging_dir(out_dir)
    try:
        _save(staging, lab, artifacts, metadata, python)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # never a half-written folder beside out_dir
        raise
    publish_dir(staging, out_dir)


def _save(staging: Path, lab: Path, artifacts: dict, metadata: dict | None, python: str):
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory() as scratch:
        code = Path(scratch) / "pipeline"
        for name in CODE_FILES:
            (code / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lab / name, code / name)
        with _quiet_mlflow():
            mlflow.pyfunc.save_model(
                str(staging),
                python_model=str(lab / "serving" / SERVED_FILE),
                artifacts={name: str(Path(path).resolve()) for name, path in artifacts.items()},
                code_paths=[str(code)],
                conda_env=_environment(python),
                metadata=metadata,
            )
    _stable_mlmodel(staging / "MLmodel", python)
    # MLflow writes the patch version of this Python and this environment's pip: not the
    # same on every machine that reproduces the package.
    (staging / "python_env.yaml").write_text(yaml.safe_dump(_python_env(python)))


def _environment(python: str) -> dict:
    """The conda environment MLflow records, and from it requirements.txt: the installed
    versions of what the model imports, and the Python version the project pins."""
    pinned = [f"{name}=={version(name)}" for name in REQUIREMENTS]
    return {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": pinned}],
    }


def _python_env(python: str) -> dict:
    """python_env.yaml (`--env-manager virtualenv`/`uv`) as MLflow writes it, without the
    patch version and the pip of the machine that packaged the model."""
    return {
        "python": python,
        "build_dependencies": ["pip", "setuptools", "wheel"],
        "dependencies": ["-r requirements.txt"],
    }


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Without MLflow's progress bars for copying local files, and its warning that no
    signature was inferred (the model checks its columns itself, by name)."""
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level, bars = pyfunc_log.level, os.environ.get(PROGRESS_BARS)
    pyfunc_log.setLevel(logging.ERROR)
    os.environ[PROGRESS_BARS] = "false"
    try:
        yield
    finally:
        pyfunc_log.setLevel(level)
        if bars is None:
            os.environ.pop(PROGRESS_BARS)
        else:
            os.environ[PROGRESS_BARS] = bars


def _stable_mlmodel(path: Path, python: str) -> None:
    """MLmodel without what differs from run to run or machine to machine."""
    model = yaml.safe_load(path.read_text())
    for key in UNSTABLE_KEYS:
        model.pop(key, None)
    pyfunc = model["flavors"]["python_function"]
    # MLflow loads the code file by its name inside the folder; the source path is only noise.
    pyfunc["model_code_path"] = SERVED_FILE
    pyfunc["python_version"] = python  # MLflow compares major.minor only
    for artifact in pyfunc.get("artifacts", {}).values():
        artifact.pop("uri", None)
    path.write_text(yaml.safe_dump(model, default_flow_style=False))

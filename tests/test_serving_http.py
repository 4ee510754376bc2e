"""The packaged model over HTTP: a real `mlflow models serve` process (local environment,
loopback) answers /invocations with the predictions the model gives in Python, labels
exactly and probabilities bit for bit, and refuses a missing column naming it."""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.preparation import read_preparation
from tests.support.params import VENV_BIN
from tests.support.services import free_port, serving
from tests.support.tables import TARGET, mixed_params, mixed_table, trained_lab, write_table

pytestmark = [pytest.mark.slow, pytest.mark.services]

START_TIMEOUT_S = 90


@contextlib.contextmanager
def model_server(folder: Path, cwd: Path, log_path: Path) -> Iterator[str]:
    """`mlflow models serve` of `folder` on 127.0.0.1, run from `cwd` without this shell's
    MLflow and TensorFlow settings (the model sets TensorFlow up itself); yields its URL
    once /ping answers, and stops its process group on the way out."""
    unset = ("MLFLOW_", "TF_", "ONEDNN_", "KERAS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    # It starts `uvicorn` by name: the environment's own.
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    port = free_port()
    argv = [
        str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(folder), "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(port), "-w", "1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(argv, url, "/ping", log_path, env=env, cwd=cwd, timeout=START_TIMEOUT_S):
        yield url


@dataclass(frozen=True)
class Served:
    url: str
    rows: pd.DataFrame
    expected: pd.DataFrame  # the same model's predictions in this process
    folder: Path
    packaged: dict[str, bytes]  # the folder's files before the server loaded it


@pytest.fixture(scope="module")
def served(tensorflow, tmp_path_factory):
    """A table's model packaged and served; the validation-sized rows to send, and the
    predictions the same model gives them in this process."""
    from pipeline.serving.package import package_model
    from pipeline.serving.predictor import Predictor, load_keras_model

    root = tmp_path_factory.mktemp("http")
    frame = mixed_table()
    write_table(root, frame, "mixed.csv")
    keras_file = trained_lab(root, mixed_params("mixed.csv"))
    package_model(keras_file, root / "prepared" / "preparation.json", root / "chosen")
    rows = frame.drop(columns=[TARGET]).iloc[:60]
    expected = Predictor(load_keras_model(keras_file), read_preparation(root / "prepared"))
    elsewhere = root / "elsewhere"  # not the project: the server finds the code in the folder
    elsewhere.mkdir()
    packaged = _files(root / "chosen")
    started = time.perf_counter()
    with model_server(root / "chosen", elsewhere, root / "serve.log") as url:
        print(f"mlflow models serve answered /ping after {time.perf_counter() - started:.1f} s")
        yield Served(url, rows, expected.predict(rows), root / "chosen", packaged)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _post(url: str, rows: pd.DataFrame) -> tuple[int, dict]:
    # Python's own values, so every float goes over the wire in its shortest exact form.
    body = {"columns": list(rows.columns), "data": [
        [v.item() if isinstance(v, np.generic) else v for v in row]
        for row in rows.itertuples(index=False)
    ]}  # fmt: skip
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps({"dataframe_split": body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_server_answers_the_python_predictions(served):
    status, answer = _post(served.url, served.rows)
    expected = served.expected
    assert status == 200
    predictions = pd.DataFrame(answer["predictions"])
    assert list(predictions.columns) == list(expected.columns)
    assert list(predictions["prediction"]) == list(expected["prediction"])
    sent = predictions.drop(columns="prediction").to_numpy(np.float32)
    held = expected.drop(columns="prediction").to_numpy()
    assert np.array_equal(sent.view(np.uint32), held.view(np.uint32))


def test_the_server_refuses_a_missing_column_naming_it(served):
    status, answer = _post(served.url, served.rows.drop(columns=["colour"]))
    assert status == 400 and answer["error_code"] == "BAD_REQUEST"
    # MLflow's server puts the rows it received before the model's one-line refusal.
    last = answer["message"].splitlines()[-1]
    assert last.startswith("Error: column 'colour' is missing (1 of 4 feature columns are)")


def test_serving_writes_nothing_into_the_folder(served):
    # A DVC output, hashed as it was written: loading the model leaves no __pycache__ in it.
    assert _files(served.folder) == served.packaged

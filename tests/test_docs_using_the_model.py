"""docs/using-the-model.md, run as a reader runs it in the docs' scratch project: its Python
block, its command lines, and its server started from the page's own command with the
page's request sent to it. Python, the command line and HTTP give the same predictions for
the same rows: labels equal, probabilities equal as the float32 the model computes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.docs_commands import blocks_of, commands_of
from tests.support.docs_lab import run_documented
from tests.support.params import ROOT
from tests.support.project import Project, copy_project
from tests.support.services import free_port, serving

PAGE = "docs/using-the-model.md"
DOCUMENTED_PORT = "5001"
START_TIMEOUT_S = 90


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), re.S)


def _served_command() -> str:
    """The page's `mlflow models serve` line: a marked block, run here in the background."""
    (line,) = [c.text for c in commands_of(ROOT / PAGE, lab_only=False)
               if c.skip and c.text.startswith("mlflow models serve")]  # fmt: skip
    return line


def documented_server(lab: Project, port: int, log_path: Path):
    """The page's serve command on `port` instead of the page's, from the project root with
    the page's MLFLOW_TRACKING_URI; stopped (its process group) on the way out."""
    command = _served_command().replace(f"-p {DOCUMENTED_PORT}", f"-p {port}")
    env = {**lab.env, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    argv = ["bash", "-c", f"exec {command}"]
    url = f"http://127.0.0.1:{port}"
    return serving(argv, url, "/ping", log_path, env=env, cwd=lab.root, timeout=START_TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.services  # an `mlflow models serve`
def test_the_using_the_model_page(docs_lab_once: Path, tmp_path: Path):
    lab = copy_project(docs_lab_once, tmp_path / "lab")
    (python_block,) = _python_blocks(PAGE)
    shown = lab.run("python", "-c", python_block).stdout
    assert "prediction" in shown and "probability_3" in shown, shown
    port, answers = free_port(), []
    for text in blocks_of(PAGE):
        if text.startswith("curl"):
            with documented_server(lab, port, tmp_path / "serve.log"):
                answers.append(run_documented(lab, text.replace(DOCUMENTED_PORT, str(port))))
        else:
            run_documented(lab, text)
    chosen = pd.read_csv(lab.root / "predictions.csv")
    assert len(chosen) == 20 and chosen.columns[0] == "prediction"
    served = pd.DataFrame(json.loads(answers[0])["predictions"])
    assert list(served.columns) == list(chosen.columns)
    assert served["prediction"].tolist() == chosen["prediction"].tolist()
    probabilities = [c for c in chosen.columns if c.startswith("probability_")]
    assert len(probabilities) == 10
    # Both print the model's float32 outputs: equal as float32, bit for bit.
    assert np.array_equal(
        served[probabilities].to_numpy(np.float32), chosen[probabilities].to_numpy(np.float32)
    )
    # The registered model is the chosen entry's, so it predicts as `--entry <chosen>` does.
    entry = json.loads((lab.root / "chosen" / "chosen.json").read_text())["entry"]
    run_documented(
        lab,
        f"python -m pipeline.predict --input new_digits.npy --output by_entry.csv --entry {entry}",
    )
    by_entry = pd.read_csv(lab.root / "by_entry.csv")
    assert by_entry["prediction"].tolist() == chosen["prediction"].tolist()
    assert np.array_equal(
        by_entry[probabilities].to_numpy(np.float32), chosen[probabilities].to_numpy(np.float32)
    )
    assert (lab.root / "predictions_l2_0.csv").is_file()

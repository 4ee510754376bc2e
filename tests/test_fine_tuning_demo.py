"""The fine-tuning demonstration run as docs/fine-tuning.md gives it, plus `--quick` (fewer
rows, epochs and rates), once, in a copy of this checkout: it leaves params.yaml, dvc.lock,
data/raw/ and pretrained/ as they were; its files hold the figures of the labs' own outputs;
its source model is the same weights when trained again and loads without the lab's code."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docs_commands import blocks_of
from tests.support.params import ROOT
from tests.support.project import Project

PAGE = "docs/fine-tuning.md"
OUT = Path("docs/fine-tuning")
COPIED = ("pipeline", "builders", "data/raw", "pretrained", "dvc.yaml", "dvc.lock",
          "params.yaml", ".gitignore", "pyproject.toml")  # fmt: skip
KEPT = ("params.yaml", "dvc.lock", "data/raw", "pretrained")
TARGETS = ("similar", "dissimilar")


def _hashes(root: Path) -> dict[str, str]:
    found = {}
    for name in KEPT:
        paths = [root / name] if (root / name).is_file() else sorted((root / name).rglob("*"))
        for path in paths:
            if path.is_file():
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(the checkout's copy after the page's command, its kept files' hashes before it)."""
    root = tmp_path_factory.mktemp("checkout")
    for name in COPIED:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, root / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, root / name)
    before = _hashes(root)
    (command,) = blocks_of(PAGE)
    Project(root).run("bash", "-euo", "pipefail", "-c", f"{command} --quick")
    return root, before


@pytest.mark.slow
def test_the_checkouts_params_lock_data_and_pretrained_stay_as_they_were(demo):
    root, before = demo
    assert _hashes(root) == before


def _sweep_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as handle:
        return {row["entry"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_the_figures_are_the_labs_own(demo, target: str):
    root, _ = demo
    out = root / OUT
    summary = json.loads((out / f"{target}.json").read_text())
    folder = out / target
    decision = json.loads((folder / "refit" / "decision.json").read_text())["decision"]
    said = json.loads((folder / "reports" / "decision.json").read_text())
    refit = json.loads((folder / "refit" / "refit.json").read_text())
    sweep = _sweep_rows(folder / "reports" / "sweep.csv")
    candidates = {decision["choice"]["chosen"]["name"]: decision["choice"]["chosen"]}
    candidates |= {c["other"]["name"]: c["other"] for c in decision["comparisons"]}
    assert summary["chosen"] == said["chosen_entry"] == decision["choice"]["chosen"]["name"]
    assert summary["folds"] == 2 and refit["entry"] == summary["chosen"]
    answer = summary["refit"]
    assert (answer["test_value"], answer["test_ci_low"], answer["test_ci_high"]) == (
        refit["test_error"], refit["test_error_ci_low"], refit["test_error_ci_high"]
    )  # fmt: skip
    page = (out / f"{target}.md").read_text()
    assert (
        f"test error {refit['test_error']:.3f}, 95% interval [{refit['test_error_ci_low']:.3f},"
        in page
    )
    for entry in summary["entries"]:
        name = entry["entry"]
        assert (entry["cv_error"], entry["cv_se"]) == (candidates[name]["value"],
                                                       candidates[name]["se"])  # fmt: skip
        metrics = json.loads((folder / "metrics" / f"{name}.json").read_text())
        assert entry["test_error"] == metrics["test_error"] == float(sweep[name]["test_error"])
        assert entry["test_ci_low"] <= entry["test_error"] <= entry["test_ci_high"]
    best, every = page.split("Every entry:")
    shown = [line for line in best.splitlines() if " ± " in line and "CV error" not in line]
    assert len(shown) == 5  # one row per approach, each at its entry's figures
    rows = {
        line.split(" | ")[0][2:]: line
        for line in every.splitlines()
        if " ± " in line and "CV error" not in line
    }
    assert set(rows) == {e["entry"] for e in summary["entries"]}
    for entry in summary["entries"]:
        cell = f"| {entry['entry']} |"
        for line in [rows[entry["entry"]], *(line for line in shown if cell in line)]:
            assert f"{entry['cv_error']:.3f} ± {entry['cv_se']:.3f}" in line
            assert f"{entry['test_error']:.3f} [{entry['test_ci_low']:.3f}," in line
    assert (folder / "reports" / "plots" / "error_vs_rate.png").is_file()
    assert (out / "test_error_by_rate.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_the_models_that_start_from_the_source_show_their_distance_from_it(demo, target: str):
    """evaluate's sq_dist_<layer> and rel_dist_<layer> for every layer that kept the source's
    weights (the head is new), in the summary and the page's distance table."""
    root, _ = demo
    summary = json.loads((root / OUT / f"{target}.json").read_text())
    page = (root / OUT / f"{target}.md").read_text()
    for entry in summary["entries"]:
        layers = {k for k in entry["distances"] if k.startswith(("sq_dist_", "rel_dist_"))}
        if entry["approach"] == "from scratch":
            assert layers == set()
        else:
            assert layers == {f"{kind}_hidden_{i}" for kind in ("sq_dist", "rel_dist")
                              for i in (1, 2)}  # fmt: skip
            assert f"| {entry['entry']} |" in page.split("‖w-w0‖/‖w0‖", 1)[1]


_SOURCE_AGAIN = """
import json, sys
from pathlib import Path
from pipeline.demos import digit_tasks, sweep_design
from pipeline.demos.source_model import train_source
model = train_source(digit_tasks.source_task(), sweep_design.QUICK.source, Path(sys.argv[1]))
print(json.dumps(model.weights_sha256))
"""
_LOADED = """
import hashlib, json, sys
import keras, numpy as np
digest = hashlib.sha256()
for array in keras.saving.load_model(sys.argv[1], compile=False).get_weights():
    digest.update(np.ascontiguousarray(array).tobytes())
print(json.dumps(digest.hexdigest()))
"""


@pytest.mark.slow
def test_the_source_model_is_the_same_weights_again_and_loads_as_plain_keras(demo, tmp_path):
    root, _ = demo
    recorded = json.loads((root / OUT / "source.json").read_text())["weights_sha256"]
    saved = tmp_path / "source.keras"

    def digest(script: str, cwd: Path) -> str:
        done = subprocess.run([sys.executable, "-c", script, str(saved)], cwd=cwd,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return json.loads(done.stdout.splitlines()[-1])

    assert digest(_SOURCE_AGAIN, root) == recorded  # another process, the same weights
    assert digest(_LOADED, tmp_path) == recorded  # Keras alone reads it, no lab code

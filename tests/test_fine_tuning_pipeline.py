"""A tiny fine-tuning project through the whole pipeline with real DVC, Keras and MLflow: a start
model with a BatchNormalization, and entries from scratch, fine-tuned without regularization,
with L2-SP, with L2-SP and plain L2, and with a frozen part. Every stage passes; the figures
measured against the start are where the sweep's other figures are (metrics/, evaluation/,
MLflow), for the entries that start from the model only; a model file loads without the lab;
after one `l2_sp` rate changes, `dvc repro` trains that one model and reuses the rest; and a
start file that is no model is refused in `prepare`, every output kept."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.params import write_yaml
from tests.support.project import (
    ALWAYS_RUN,
    Project,
    children_of,
    copy_project,
    make_project,
    mlflow_runs,
    parent_of_models,
    ran_stages,
)
from tests.support.start_models import SWEEP, fine_tuning_params

pytestmark = pytest.mark.slow  # dvc repro of the whole pipeline

FROM_START = ("tuned", "held", "mixed", "frozen")
LAYERS = ("hidden_1", "hidden_2", "output")
STAGES = ("prepare", "train", "evaluate", "refit", "report", "record", "chosen", "register")
# The start model, made in the project's own Python so the test process needs no Keras.
SAVE_START = (
    "import sys; from pathlib import Path; from tests.support.start_models import"
    " save_start_model; save_start_model(Path(sys.argv[1]))"
)


@pytest.fixture(scope="module")
def tuned_once(tmp_path_factory) -> tuple[Path, str]:
    """The project after its first `dvc repro`, and that run's stdout; tests change copies."""
    project = make_project(tmp_path_factory.mktemp("fine_tuning") / "lab")
    start = project.root / "pretrained" / "source.keras"
    subprocess.run([sys.executable, "-c", SAVE_START, str(start)], check=True, timeout=300,
                   cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    write_yaml(project.params_path, fine_tuning_params())
    return project.root, project.dvc("repro").stdout


def _metrics(project_root: Path, folder: str, entry: str) -> dict:
    return json.loads((project_root / folder / f"{entry}.json").read_text())


def test_every_stage_passes_and_the_distances_from_the_start_are_reported(tuned_once):
    root, stdout = tuned_once
    assert ran_stages(stdout) == {stage: "ran" for stage in STAGES}, stdout
    sweep = json.loads((root / "models" / "sweep.json").read_text())
    assert sweep["start"] == {"with_start": list(LAYERS),
                              "weighted": ["hidden_1", "bn", "hidden_2", "output"]}  # fmt: skip
    assert set(SWEEP) == {"scratch", *FROM_START}
    per_layer = [f"{kind}_{layer}" for kind in ("sq_dist", "rel_dist") for layer in LAYERS]
    for entry in FROM_START:
        headline = _metrics(root, "metrics", entry)
        assert {"l2_sp_penalty", "sum_sq_dist"} <= set(headline), entry
        assert max(map(len, headline)) <= 15  # `dvc metrics diff` stays within 80 columns
        seed = _metrics(root, "evaluation", entry)["seeds"][0]["metrics"]
        assert set(per_layer) <= set(seed), entry
        assert seed["sum_sq_dist"] == pytest.approx(sum(seed[f"sq_dist_{n}"] for n in LAYERS))
        assert seed["sum_sq_dist"] > 0
    scratch = _metrics(root, "metrics", "scratch")
    assert not {"l2_sp_penalty", "sum_sq_dist"} & set(scratch)
    scratch_seed = _metrics(root, "evaluation", "scratch")["seeds"][0]["metrics"]
    assert not [k for k in scratch_seed if "dist" in k or "l2_sp" in k]
    # Without any rate the term is 0; with l2_sp alone it is the whole penalty; mixed, a part.
    tuned, held, mixed = (_metrics(root, "metrics", e) for e in ("tuned", "held", "mixed"))
    assert tuned["l2_penalty"] == tuned["l2_sp_penalty"] == 0.0
    assert held["l2_penalty"] == held["l2_sp_penalty"] > 0
    assert mixed["l2_penalty"] > mixed["l2_sp_penalty"] > 0
    frozen = _metrics(root, "evaluation", "frozen")["seeds"][0]["metrics"]
    assert frozen["sq_dist_hidden_1"] == 0.0 and frozen["rel_dist_hidden_1"] == 0.0
    assert frozen["sq_dist_hidden_2"] > 0

    # MLflow has them as it has sq_weights_<layer>: each model run's final metrics.
    project = Project(root)
    runs = mlflow_runs(project)
    parent = parent_of_models(project, runs)
    by_entry = {r.data.tags.get("entry"): r for r in children_of(runs, parent.info.run_id)}
    assert set(per_layer) <= set(by_entry["held"].data.metrics)
    assert by_entry["held"].data.metrics["l2_sp_penalty"] == held["l2_sp_penalty"]
    assert "sum_sq_dist" not in by_entry["scratch"].data.metrics
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_a_fine_tuned_model_file_loads_without_the_lab(tuned_once, tmp_path):
    root, _ = tuned_once
    path = root / "models" / "frozen" / "model.keras"
    script = (
        "import sys, keras\n"
        f"m = keras.saving.load_model({str(path)!r}, safe_mode=True)\n"
        "assert not [n for n in sys.modules if n.split('.')[0] == 'pipeline']\n"
        "print([(l.name, l.trainable) for l in m.layers if l.weights])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(
        [("hidden_1", False), ("bn", False), ("hidden_2", True), ("output", True)]
    )


def test_changing_one_l2_sp_rate_trains_that_model_alone(tuned_once, tmp_path):
    project = copy_project(tuned_once[0], tmp_path / "lab")
    params = fine_tuning_params()
    params["sweep"]["held"] = {"l2_sp": 0.02}
    write_yaml(project.params_path, params)
    result = project.dvc("repro")
    assert "[train] trained 1 models" in result.stderr and "reused 4" in result.stderr, (
        result.stderr
    )
    assert ran_stages(result.stdout).items() >= {"train": "ran", **ALWAYS_RUN}.items()
    runs = mlflow_runs(project)
    parent = parent_of_models(project, runs)
    assert parent.data.metrics["models_trained"] == 1
    assert parent.data.metrics["models_reused"] == 4
    trained = [r for r in children_of(runs, parent.info.run_id)
               if r.data.tags.get("reused") != "true"]  # fmt: skip
    assert [r.data.tags["entry"] for r in trained] == ["held"]
    assert _metrics(project.root, "metrics", "held") != _metrics(tuned_once[0], "metrics", "held")


def _outputs(project: Project) -> dict[str, str]:
    return {
        str(path.relative_to(project.root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("models", "metrics", "evaluation", "reports", "data/prepared")
        for path in sorted((project.root / folder).rglob("*"))
        if path.is_file()
    }


def test_dvc_repro_refuses_a_broken_start_file_in_prepare_and_keeps_every_output(
    tuned_once, tmp_path
):
    project = copy_project(tuned_once[0], tmp_path / "lab")
    before = _outputs(project), (project.root / "dvc.lock").read_text()
    (project.root / "pretrained" / "source.keras").write_text("not a model\n")
    failed = project.dvc("repro", check=False)
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: prepare: model.start_from = 'pretrained/source.keras': not a Keras model file;"
        " save the pretrained model with model.save('pretrained/<name>.keras') (Keras 3's"
        " format)"
    ], failed.stderr
    assert set(ran_stages(failed.stdout)) == {"prepare"}, failed.stdout
    assert (_outputs(project), (project.root / "dvc.lock").read_text()) == before
    assert {run.info.status for run in mlflow_runs(project)} == {"FINISHED"}

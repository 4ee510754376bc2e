"""End to end: `dvc repro` on a throwaway copy of the project, checked through DVC and MLflow."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ruamel.yaml import YAML

from pipeline.core.contracts import rounded
from tests.support.params import write_yaml
from tests.support.project import (
    ALWAYS_RUN,
    UP_TO_DATE,
    Project,
    children_of,
    mlflow_runs,
    model_runs,
    parent_of_models,
    parent_runs,
    ran_stages,
)

pytestmark = pytest.mark.slow

ENTRIES = ("plain", "layerwise")
STAGES = {"prepare", "train", "evaluate", "refit", "report", "record", "chosen", "register"}


def _read_json(project: Project, path: str) -> dict:
    return json.loads((project.root / path).read_text())


def _params(project: Project) -> dict:
    return YAML(typ="safe").load(project.params_path.read_text())


def test_repro_trains_evaluates_and_records_every_entry(reproduced_once, reproduced: Project):
    project = reproduced
    assert set(ran_stages(reproduced_once[1])) == STAGES

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri())
    runs = mlflow_runs(project)
    (parent,) = parent_runs(runs)
    assert parent_of_models(project, runs).info.run_id == parent.info.run_id
    children = children_of(runs, parent.info.run_id)
    assert len(runs) == 1 + len(ENTRIES)  # every model run is nested under the parent
    assert sorted(run.info.run_name for run in children) == sorted(ENTRIES)
    assert {run.info.status for run in runs} == {"FINISHED"}
    epochs = _params(project)["train"]["epochs"]
    for run in children:
        entry = run.info.run_name
        run_id = run.info.run_id
        headline = _read_json(project, f"metrics/{entry}.json")
        (seed,) = _read_json(project, f"evaluation/{entry}.json")["seeds"]
        # metrics/ holds the headline figures at 5 significant digits; MLflow has them all.
        assert set(headline) >= {"train_error", "val_error", "test_error", "l2_penalty"}
        for name, value in headline.items():
            assert run.data.metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-9), name
        for name, value in seed["metrics"].items():
            assert math.isclose(run.data.metrics[name], value, rel_tol=1e-4), name
        assert run.data.tags["dvc_stage"] == "train"
        assert run.data.tags["entry"] == entry
        assert len(client.get_metric_history(run_id, "epoch_val_error")) == epochs
        assert {"l2_rate.hidden_1", "l2_rate.hidden_2", "l2_rate.output"} <= run.data.params.keys()

    layerwise = next(run for run in children if run.info.run_name == "layerwise")
    assert layerwise.data.params["l2_rate.hidden_1"] == "0.01"
    assert layerwise.data.params["l2_rate.output"] == "0.0"
    assert layerwise.data.metrics["l2_penalty"] > 0

    # The model in MLflow is the model DVC tracks: the same predictions, to the bit.
    import keras
    import mlflow.keras

    from pipeline.datasets import prepared

    test_split = prepared.read_split(project.root / "data" / "prepared", "test")
    model_dir = project.root / "models" / "layerwise"
    mlflow.set_tracking_uri(project.tracking_uri())
    logged = mlflow.keras.load_model(layerwise.data.tags["model_uri"])
    saved = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(
        logged.predict(test_split.features, verbose=0),
        saved.predict(test_split.features, verbose=0),
    )
    artifacts = {a.path for a in client.list_artifacts(layerwise.info.run_id)}
    assert {"weights", "config.json"} <= artifacts

    table = (project.root / "reports" / "sweep.csv").read_text().splitlines()
    assert len(table) == 1 + len(ENTRIES)
    assert "test_error" in project.dvc("metrics", "show", "--json").stdout

    # Nothing changed: nothing but `record` runs, and no MLflow run is added.
    assert ran_stages(project.dvc("repro").stdout) == ALWAYS_RUN
    assert len(mlflow_runs(project)) == len(runs)


def test_changing_an_entry_trains_only_it_and_changing_it_back_restores_it(
    reproduced: Project,
):
    """A change reruns `train` and what follows, with one new parent run holding every
    entry, but only the changed entry trains: the other comes from the model store and its
    run points at the run that trained it. Going back to params DVC has seen restores
    `train` and `evaluate` from DVC's run cache: no MLflow run is made, and the restored
    models lead back to the runs that produced them."""
    project = reproduced
    first_sweep = _read_json(project, "models/sweep.json")
    first_parent = parent_of_models(project, mlflow_runs(project))
    first_metrics = {e: _read_json(project, f"metrics/{e}.json") for e in ENTRIES}
    before = mlflow_runs(project)

    params = _params(project)
    params["sweep"]["plain"]["l2"] = 0.002
    write_yaml(project.params_path, params)
    changed = project.dvc("repro")
    stages = ran_stages(changed.stdout)
    assert {stages.get(s) for s in ("train", "evaluate", "report")} == {"ran"}, changed.stdout
    assert "[train] training 1 of 2 models" in changed.stderr, changed.stderr
    after_change = mlflow_runs(project)
    new_ids = {r.info.run_id for r in after_change} - {r.info.run_id for r in before}
    new_runs = [r for r in after_change if r.info.run_id in new_ids]
    (new_parent,) = parent_runs(new_runs)
    new_children = {r.info.run_name: r for r in children_of(new_runs, new_parent.info.run_id)}
    assert sorted(new_children) == sorted(ENTRIES)
    assert len(new_runs) == 1 + len(ENTRIES)
    assert parent_of_models(project, after_change).info.run_id == new_parent.info.run_id
    first_layerwise = next(
        r for r in children_of(before, first_parent.info.run_id) if r.info.run_name == "layerwise"
    )
    reused = new_children["layerwise"].data.tags
    assert reused["reused_from_run"] == first_layerwise.info.run_id
    assert reused["model_uri"] == first_layerwise.data.tags["model_uri"]
    assert "reused" not in new_children["plain"].data.tags

    params["sweep"]["plain"]["l2"] = 0.0
    write_yaml(project.params_path, params)
    back = project.dvc("repro")
    stages = ran_stages(back.stdout)
    assert stages.get("train") == "restored", back.stdout
    assert stages.get("evaluate") == "restored", back.stdout
    assert len(mlflow_runs(project)) == len(after_change)

    assert _read_json(project, "models/sweep.json") == first_sweep
    runs = mlflow_runs(project)
    assert parent_of_models(project, runs).info.run_id == first_parent.info.run_id
    first_children = {r.data.tags["entry"]: r for r in children_of(runs, first_parent.info.run_id)}
    for entry in ENTRIES:
        assert _read_json(project, f"metrics/{entry}.json") == first_metrics[entry]
        (seed,) = _read_json(project, f"evaluation/{entry}.json")["seeds"]
        run = first_children[entry]
        assert run.info.status == "FINISHED"
        for name, value in seed["metrics"].items():  # as `record` logs them: 5 digits
            assert run.data.metrics[name] == rounded(value), name


def test_rerunning_from_scratch_repeats_every_file_dvc_and_git_track(reproduced: Project):
    """Another run with the same params (another MLflow run, another day) changes no byte
    that `dvc.lock` hashes or git tracks, so a fresh clone reproduces the committed files."""
    project = reproduced
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "first repro")
    runs_before = mlflow_runs(project)

    project.dvc("repro", "-f")

    assert project.run("git", "status", "--porcelain").stdout == ""
    assert json.loads(project.dvc("status", "--json").stdout) == UP_TO_DATE
    runs = mlflow_runs(project)
    assert len(parent_runs(runs)) == 2 * len(parent_runs(runs_before))
    # The new runs are the ones the models now lead to, and evaluate recorded into them.
    newest = parent_of_models(project, runs)
    assert newest.info.run_id not in {r.info.run_id for r in runs_before}
    for child in children_of(runs, newest.info.run_id):
        assert "test_error" in child.data.metrics


def test_bad_params_fail_before_training_and_lose_nothing(reproduced: Project):
    project = reproduced
    lock_before = (project.root / "dvc.lock").read_text()
    model_before = (project.root / "models" / "plain" / "model.keras").read_bytes()
    runs_before = mlflow_runs(project)
    params = _params(project)
    params["sweep"]["plain"]["l2"] = -1.0
    params["sweep"]["evil; touch pwned"] = {"l2": 0.1}
    write_yaml(project.params_path, params)

    failed = project.dvc("repro", check=False)
    assert failed.returncode != 0
    error_lines = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "params.yaml" in error_lines[0], failed.stderr
    assert not (project.root / "pwned").exists()
    assert set(ran_stages(failed.stdout)) <= {"prepare"}, failed.stdout
    assert (project.root / "dvc.lock").read_text() == lock_before
    assert (project.root / "models" / "plain" / "model.keras").read_bytes() == model_before
    assert (project.root / "data" / "prepared" / "train.parquet").is_file()
    runs = mlflow_runs(project)
    assert len(runs) == len(runs_before) and {r.info.status for r in runs} == {"FINISHED"}


def test_a_diverging_entry_fails_alone_and_the_sweep_completes(project: Project):
    params = _params(project)
    params["sweep"]["boom"] = {"l2": 1.0e38}
    write_yaml(project.params_path, params)
    result = project.dvc("repro")

    diverged = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("[train] warning:") and "diverged" in line
    ]
    assert len(diverged) == 1 and "warning: boom diverged at epoch 1" in diverged[0], result.stderr
    assert _read_json(project, "metrics/boom.json")["diverged_at_epoch"] == 1
    assert "boom diverged at epoch 1" in (project.root / "reports" / "sweep.md").read_text()
    assert not (project.root / "models" / "boom" / "model.keras").exists()

    runs = {run.info.run_name: run for run in model_runs(mlflow_runs(project))}
    assert set(runs) == {*ENTRIES, "boom"}
    assert runs["boom"].info.status == "FAILED"
    assert "diverged at epoch 1" in runs["boom"].data.tags["failure_reason"]
    for entry in ENTRIES:
        assert runs[entry].info.status == "FINISHED"
        headline = _read_json(project, f"metrics/{entry}.json")
        assert runs[entry].data.metrics["val_error"] == pytest.approx(
            headline["val_error"], rel=1e-4
        )

"""A regression target end to end through `dvc repro`: a user's CSV whose target is a quantity,
with an id column left out (`data.drop_columns`) and a text column one-hot encoded, chosen
with 3-fold cross-validation. One project trained once per module; each test reads it.

The figures are checked against the models themselves: every model DVC tracks is loaded, its
predictions un-standardised with meta.json's statistics, and the RMSE, MAE and R² computed
here with numpy must be the ones `evaluate` wrote (to the 5 significant digits metrics/ keeps).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.task import REGRESSION_TASK
from tests.support.params import tiny_params, write_yaml
from tests.support.project import Project, make_project, mlflow_runs, model_runs

pytestmark = pytest.mark.slow

ENTRIES = {"plain": {"l2": 0.0}, "mild": {"l2": 0.001}, "heavy": {"l2": 1.0}}


def _friedman_csv(path: Path) -> pd.DataFrame:
    """make_friedman1 (y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + noise, in a
    unit we call "kWh" shifted to look like a real quantity), with an id and a text column."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=240, n_features=6, noise=1.0, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame.insert(0, "id", np.arange(1000, 1000 + len(frame)))
    frame["site"] = np.where(x[:, 5] > 0.5, "north", "south")
    frame["kwh"] = 100.0 + y
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def regression_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    params = tiny_params()
    params["data"].update(
        source="csv", csv_path="data/raw/energy.csv", target_column="kwh", drop_columns=["id"]
    )
    params["train"].update(epochs=12, batch_size=16)
    params["choose"]["folds"] = 3
    params["sweep"] = ENTRIES
    project = make_project(tmp_path_factory.mktemp("regression") / "lab", params)
    _friedman_csv(project.root / "data" / "raw" / "energy.csv")
    project.dvc("add", "data/raw/energy.csv")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "a regression table")
    project.dvc("repro")
    return project


def _json(project: Project, path: str) -> dict:
    return json.loads((project.root / path).read_text())


def test_prepare_standardises_the_target_with_the_training_rows(regression_project: Project):
    from pipeline.core.contracts import read_meta
    from pipeline.datasets import prepared

    project = regression_project
    meta = read_meta(project.root / "data" / "prepared")
    assert meta.task == "regression" and meta.n_outputs == 1 and meta.class_names == ()
    train = prepared.read_split(project.root / "data" / "prepared", "train")
    assert train.labels.dtype == np.float32
    # Standardised with the training rows' own mean and population std (float32 storage).
    assert abs(float(np.mean(train.labels))) < 1e-5
    assert float(np.std(train.labels)) == pytest.approx(1.0, abs=1e-5)
    raw = pd.read_csv(project.root / "data" / "raw" / "energy.csv")["kwh"]
    in_units = meta.in_target_units(train.labels.astype(np.float64))
    # Every training value is one of the CSV's targets (float32 keeps ~7 digits of ~100).
    nearest = np.abs(in_units[:, None] - raw.to_numpy()[None, :]).min(axis=1)
    assert nearest.max() < 1e-4
    # 6 numeric features + site's two one-hot columns; `id` left out.
    assert meta.n_features == 8


def test_every_figure_is_in_the_targets_units_and_matches_the_model(
    regression_project: Project,
):
    import keras

    from pipeline.core.contracts import read_meta
    from pipeline.datasets import prepared

    project = regression_project
    meta = read_meta(project.root / "data" / "prepared")
    folder = project.root / "data" / "prepared"
    splits = {split: prepared.read_split(folder, split) for split in prepared.SPLITS}
    for entry in ENTRIES:
        metrics = _json(project, f"metrics/{entry}.json")
        assert set(REGRESSION_TASK.headline) <= metrics.keys(), metrics
        assert {"cv_mse_mean", "cv_mse_se", "n_folds"} <= metrics.keys()
        assert not any("error" in key for key in metrics)
        model = keras.saving.load_model(project.root / "models" / entry / "model.keras")
        assert tuple(model.outputs[0].shape[1:]) == (1,)
        for split in ("train", "val", "test"):
            rows = splits[split]
            predicted = meta.in_target_units(
                np.asarray(model(rows.features, training=False), np.float64)[:, 0]
            )
            truth = meta.in_target_units(rows.labels.astype(np.float64))
            rmse = math.sqrt(np.mean((predicted - truth) ** 2))
            if f"{split}_rmse" in metrics:
                assert metrics[f"{split}_rmse"] == pytest.approx(rmse, rel=1e-4)
        details = _json(project, f"evaluation/{entry}.json")
        figures = details["seeds"][0]["metrics"]
        assert figures["val_mse"] == pytest.approx(figures["val_rmse"] ** 2, rel=1e-6)
        assert metrics["gen_gap"] == pytest.approx(
            metrics["test_rmse"] - metrics["train_rmse"], abs=2e-4 * metrics["test_rmse"]
        )
        assert {"val_mae", "val_r2", "test_r2", "train_r2"} <= figures.keys()
        baseline = details["baseline"]
        assert baseline["predictor"] == "training mean"
        truth = meta.in_target_units(splits["test"].labels.astype(np.float64))
        mean = meta.target_mean
        assert baseline["test_rmse"] == pytest.approx(math.sqrt(np.mean((truth - mean) ** 2)))


def test_held_out_predictions_are_floats_in_units(regression_project: Project):
    project = regression_project
    with np.load(project.root / "evaluation" / "held_out.npz") as held_out:
        labels = held_out["labels"]
        assert labels.dtype == np.float64 and labels.min() > 50  # units, not standardised
        for entry in ENTRIES:
            assert held_out[entry].dtype == np.float64 and held_out[entry].shape == labels.shape


def test_the_decision_is_made_on_mse_and_reported_in_rmse(regression_project: Project):
    project = regression_project
    decision = _json(project, "refit/decision.json")["decision"]
    assert decision["figure"] == "cv_mse_mean" and decision["test_figure"] == "test_rmse"
    assert decision["refit"] is not None  # folds: the chosen entry refit on every row
    refit = decision["refit"]
    assert refit["test_ci_low"] <= refit["test_value"] <= refit["test_ci_high"]
    page = (project.root / "reports" / "choosing.md").read_text()
    assert "RMSE" in page and "MSE" in page
    assert "1 - accuracy" not in page and "classes" not in page
    sweep = (project.root / "reports" / "sweep.md").read_text()
    assert "training mean" in sweep
    best = _json(project, "reports/best.json")
    assert best["best_entry"] in ENTRIES


def test_mlflow_runs_carry_the_regression_figures(regression_project: Project):
    runs = model_runs(mlflow_runs(regression_project))
    assert {run.info.status for run in runs} == {"FINISHED"}
    base = [run for run in runs if run.info.run_name in ENTRIES]
    assert sorted(run.info.run_name for run in base) == sorted(ENTRIES)
    for run in base:
        metrics = _json(regression_project, f"metrics/{run.info.run_name}.json")
        assert run.data.metrics["val_rmse"] == pytest.approx(metrics["val_rmse"], rel=1e-4)
        assert "val_error" not in run.data.metrics


def _hashes(project: Project) -> dict[str, str]:
    return {
        str(path.relative_to(project.root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("models", "metrics", "evaluation", "reports", "refit", "data/prepared")
        for path in sorted((project.root / folder).rglob("*"))
        if path.is_file()
    } | {"dvc.lock": (project.root / "dvc.lock").read_text()}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: p["data"].update(label_noise=0.1), "data.label_noise"),
        (lambda p: p["sweep"]["plain"].update(label_noise=0.1), "label_noise"),
        (lambda p: p["data"].update(drop_columns=["kwh"]), "data.drop_columns"),
        (lambda p: p["data"].update(drop_columns=["nope"]), "data.drop_columns"),
    ],
    ids=["label_noise", "entry_label_noise", "drop_target", "drop_unknown"],
)
def test_a_refused_edit_loses_nothing(regression_project: Project, edit, expected: str):
    project = regression_project
    original = project.params_path.read_text()
    before = _hashes(project)
    runs_before = sorted((r.info.run_id, r.info.status) for r in mlflow_runs(project))
    from ruamel.yaml import YAML

    params = YAML(typ="safe", pure=True).load(original)
    edit(params)
    write_yaml(project.params_path, params)
    try:
        failed = project.dvc("repro", check=False)
    finally:
        project.params_path.write_text(original)
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], failed.stderr
    assert _hashes(project) == before
    assert sorted((r.info.run_id, r.info.status) for r in mlflow_runs(project)) == runs_before

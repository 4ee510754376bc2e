"""The sweep report: its table, plots (DVC and PNG), and the MLflow parent run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import Project, write_yaml
from ruamel.yaml import YAML

from pipeline import plots
from pipeline.report import rate_converter

PLOT_FILES = (
    "error_vs_rate",
    "sq_weights_vs_rate",
    "near_linear_vs_rate",
    "learning_curves_error",
    "learning_curves_loss",
)
FIGURES = (
    "error_vs_rate",
    "sq_weights_vs_rate",
    "near_linear_vs_rate",
    "learning_curves",
    "weight_histograms",
)


def test_rate_zero_sits_one_decade_below_the_smallest_rate():
    assert plots.zero_position([0.0, 1e-4, 0.1]) == pytest.approx(-5.0)
    assert plots.zero_position([0.0, 3e-3]) == pytest.approx(-4.0)
    table = pd.DataFrame({"entry": ["a", "b", "c", "mixed"], "val_error": [0.1, 0.2, 0.3, 0.4]})
    rows = plots.by_rate(table, {"a": 0.01, "b": 0.0, "c": 0.001})
    assert list(rows["entry"]) == ["b", "c", "a"]  # by rate; the per-layer entry is left out
    assert list(rows["log10_rate"]) == pytest.approx([-4.0, -3.0, -2.0])


def test_uniform_rates_leave_out_per_layer_entries():
    rates = {"plain": (0.0, 0.0), "same": (0.01, 0.01), "mixed": (0.01, 0.0)}
    assert plots.uniform_rates(rates) == {"plain": 0.0, "same": 0.01}


def test_rate_converter_follows_each_convention():
    text = rate_converter({"x": 0.01}, batch_size=32, train_rows=300)
    # sklearn alpha = 2 * batch * c; textbook lambda = 2 * m * c; SGD weight decay = 2c.
    assert "| x | 0.01 | 0.64 | 6 | 0.02 |" in text
    assert "under Adam it is not" in text


def test_figures_draw_every_entry():
    histories = {
        e: pd.DataFrame(
            {
                "epoch": [1, 2],
                "train_error": [0.5, 0.4],
                "val_error": [0.6, 0.5],
                "data_loss": [1.0, 0.9],
                "l2_penalty": [0.1, 0.05],
            }
        )
        for e in ("a", "b")
    }
    fig = plots.curves_figure(histories, ["a", "b"])
    errors_ax, losses_ax = fig.axes
    assert len(errors_ax.lines) == 4 and len(losses_ax.lines) == 4  # 2 entries x 2 series
    rng = np.random.default_rng(0)
    kernels = {
        e: {"hidden_1": rng.normal(size=(4, 3)), "output": rng.normal(size=(3, 2))}
        for e in ("a", "b")
    }
    assert len(plots.histograms_figure(kernels, ["a", "b"]).axes) == 2


@pytest.mark.slow
def test_report_writes_plots_and_nests_runs_under_one_parent(project: Project):
    project.dvc("repro")
    reports = project.root / "reports"
    table = pd.read_csv(reports / "sweep.csv")
    assert list(table["val_error"]) == sorted(table["val_error"])
    assert {"near_linear_share", "saturated_share", "mlflow_run_id"} <= set(table.columns)
    assert table["near_linear_share"].between(0, 1).all()
    assert "sklearn alpha" in (reports / "sweep.md").read_text()
    for name in PLOT_FILES:
        assert len(pd.read_csv(reports / "plots" / f"{name}.csv")) > 0, name
    for name in FIGURES:
        assert (reports / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    curves = pd.read_csv(reports / "plots" / "learning_curves_error.csv")
    epochs = YAML(typ="safe").load(project.params_path.read_text())["train"]["epochs"]
    assert len(curves) == len(table) * 2 * epochs  # every entry, train and val, every epoch
    error_vs_rate = pd.read_csv(reports / "plots" / "error_vs_rate.csv")
    assert set(error_vs_rate["entry"]) == {"plain"}  # `layerwise` has no single rate

    # `dvc plots show` renders every declared plot into one HTML page.
    project.dvc("plots", "show", "--out", "dvc_plots")
    html = (project.root / "dvc_plots" / "index.html").read_text()
    for title in ("Error vs L2 rate", "Learning curves, error", "weight_histograms.png"):
        assert title in html, title

    # MLflow: one parent run holding the table and plots; every entry run nested under it.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri())
    experiment = client.get_experiment_by_name("l2-lab")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(table["entry"])
    assert parent.data.metrics["best_val_error"] == pytest.approx(table["val_error"][0])
    assert parent.data.tags["best_entry"] == table["entry"][0]
    assert parent.data.tags["missing_entry_runs"] == "none"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.csv", "sweep.md", "plots"} <= artifacts
    pngs = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {f"plots/{name}.png" for name in FIGURES} == pngs
    # The compare view lines up: every entry run has the rate param and the test_error metric.
    for child in children:
        assert "l2" in child.data.params and "test_error" in child.data.metrics

    # Rerunning the report for the same entry runs reuses the parent instead of adding one.
    project.dvc("repro", "-f", "-s", "report")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs if r.data.tags.get("sweep") == "parent"] == [
        parent.info.run_id
    ]


def _stage_lines(output: str) -> dict[str, str]:
    """stage name -> 'ran' or 'restored', from `dvc repro` output."""
    found = {}
    for line in output.splitlines():
        if line.startswith("Running stage '"):
            found[line.split("'")[1]] = "ran"
        elif line.startswith("Stage '") and "is cached" in line:
            found[line.split("'")[1]] = "restored"
    return found


@pytest.mark.slow
def test_run_cache_restore_points_at_the_run_that_made_the_files(project: Project):
    """A stage restored from DVC's run cache makes no MLflow run: its restored `run.json` and
    metrics file name the run that produced them, which already holds the same numbers, and
    the next report nests that run under the new sweep's parent."""
    params = YAML(typ="safe").load(project.params_path.read_text())
    project.dvc("repro")
    first_id = json.loads((project.root / "metrics" / "plain.json").read_text())["mlflow_run_id"]

    params["sweep"]["plain"]["l2"] = 0.002
    write_yaml(project.params_path, params)
    project.dvc("repro")
    second_id = json.loads((project.root / "metrics" / "plain.json").read_text())["mlflow_run_id"]
    assert second_id != first_id

    params["sweep"]["plain"]["l2"] = 0.0
    write_yaml(project.params_path, params)
    third = project.dvc("repro")
    stages = _stage_lines(third.stdout)
    assert stages.get("train@plain") == "restored", third.stdout
    assert stages.get("evaluate@plain") == "restored", third.stdout

    metrics = json.loads((project.root / "metrics" / "plain.json").read_text())
    run_file = json.loads((project.root / "models" / "plain" / "run.json").read_text())
    assert metrics["mlflow_run_id"] == run_file["run_id"] == first_id

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri())
    run = client.get_run(first_id)
    for name in ("val_error", "test_error", "l2_penalty", "near_linear_share"):
        assert math.isclose(run.data.metrics[name], metrics[name], rel_tol=1e-9), name
    experiment = client.get_experiment_by_name("l2-lab")
    entry_runs = [
        r for r in client.search_runs([experiment.experiment_id]) if "sweep" not in r.data.tags
    ]
    assert len(entry_runs) == 3  # plain twice (0.0, then 0.002) and layerwise once, no more

    # The report is never restored (its plots output is `persist`): it ran, found the first
    # sweep's parent by its key (the same entry runs) and nested both entries under it again.
    assert stages.get("report") == "ran", third.stdout
    parents = [r for r in client.search_runs([experiment.experiment_id]) if "sweep" in r.data.tags]
    assert len(parents) == 2
    first_parent = min(parents, key=lambda r: r.info.start_time).info.run_id
    layerwise_id = json.loads((project.root / "metrics" / "layerwise.json").read_text())[
        "mlflow_run_id"
    ]
    for run_id in (first_id, layerwise_id):
        assert client.get_run(run_id).data.tags["mlflow.parentRunId"] == first_parent


def test_dvc_plot_titles_state_the_near_linear_threshold_the_code_uses():
    from conftest import ROOT

    from pipeline.metrics import NEAR_LINEAR_Z

    titles = [
        next(iter(plot)) if isinstance(plot, dict) else plot
        for plot in YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["plots"]
    ]
    assert any(f"|z| < {NEAR_LINEAR_Z:g}" in title for title in titles), titles

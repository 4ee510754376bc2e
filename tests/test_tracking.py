"""Where runs go: the store path rules, a moved project's store, and how params are
flattened for MLflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.tracking import records, store
from tests.support.params import ROOT


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    return monkeypatch


def test_default_store_is_at_the_project_root(clean_env, tmp_path: Path):
    clean_env.chdir(tmp_path)
    assert store.tracking_uri(store.project_root()) == f"sqlite:///{tmp_path}/mlflow.db"


def test_queued_experiments_log_to_the_original_repository(clean_env, tmp_path: Path):
    # `dvc exp run --queue` runs in a temporary copy and sets DVC_ROOT to the real repo.
    original, copy = tmp_path / "repo", tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmp1"
    copy.mkdir(parents=True)
    clean_env.chdir(copy)
    clean_env.setenv("DVC_ROOT", str(original))
    assert store.tracking_uri(store.project_root()) == f"sqlite:///{original}/mlflow.db"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///runs/store.db", "sqlite:///{root}/runs/store.db"),
        ("sqlite:////abs/store.db", "sqlite:////abs/store.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("postgresql://user@db/mlflow", "postgresql://user@db/mlflow"),
    ],
)
def test_relative_store_paths_are_anchored_at_the_root(clean_env, tmp_path, uri, expected):
    clean_env.setenv("MLFLOW_TRACKING_URI", uri)
    assert store.tracking_uri(tmp_path) == expected.format(root=tmp_path)


def test_params_are_flattened_with_dotted_names():
    flat = records.flatten({"l2_rate": {"hidden_1": 0.01, "output": 0.0}, "model": {"units": [8]}})
    assert flat == {"l2_rate.hidden_1": "0.01", "l2_rate.output": "0.0", "model.units": "[8]"}


def test_default_store_keeps_artifacts_beside_the_database(clean_env, tmp_path: Path):
    # From a temporary copy (a queued experiment), artifacts must still go to the real repo.
    original, copy = tmp_path / "repo", tmp_path / "copy"
    original.mkdir()
    copy.mkdir()
    clean_env.chdir(copy)
    clean_env.setenv("DVC_ROOT", str(original))
    experiment_id = store.use_experiment("artifacts-here")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{original}/mlflow.db")
    experiment = client.get_experiment(experiment_id)
    assert experiment.artifact_location == (original / "mlartifacts").as_uri()
    # MLflow 3's UI opens an experiment without this tag on its GenAI view.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


# Run in its own process: MLflow caches each run's artifact location per process, and a
# project is copied or moved between stage processes, never during one.
LOG_IN_A_NEW_STORE = """
from pathlib import Path
from mlflow.tracking import MlflowClient
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.tracking import records, store
from pipeline.core.task import CLASSIFICATION_TASK

experiment_id = store.use_experiment("l2-lab")
run_id = MlflowClient().create_run(experiment_id).info.run_id
Path("before.txt").write_text("logged before\\n")
records.log_artifact(run_id, Path("before.txt"))
print(experiment_id, run_id)
"""


@pytest.mark.parametrize("how", ["copied", "moved"])
def test_a_copied_or_moved_project_keeps_its_artifacts_inside(clean_env, tmp_path: Path, how):
    from mlflow.tracking import MlflowClient

    first, second = tmp_path / "a" / "lab", tmp_path / "b" / "lab"
    first.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    env["PYTHONPATH"] = str(ROOT)
    logged = subprocess.run(
        [sys.executable, "-c", LOG_IN_A_NEW_STORE],
        cwd=first, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert logged.returncode == 0, logged.stderr[-2000:]
    experiment_id, run_id = logged.stdout.split()

    second.parent.mkdir()
    if how == "copied":
        shutil.copytree(first, second)
    else:
        shutil.move(first, second)
    clean_env.chdir(second)
    assert store.use_experiment("l2-lab") == experiment_id

    client = MlflowClient(tracking_uri=f"sqlite:///{second}/mlflow.db")
    artifacts = second / "mlartifacts"
    assert client.get_experiment(experiment_id).artifact_location == artifacts.as_uri()
    assert client.get_run(run_id).info.artifact_uri.startswith(artifacts.as_uri() + "/")
    (second / "after.txt").write_text("logged after\n")
    records.log_artifact(run_id, second / "after.txt")
    assert {a.path for a in client.list_artifacts(run_id)} == {"before.txt", "after.txt"}
    assert [p.parent.parent for p in artifacts.rglob("after.txt")] == [artifacts / run_id]
    if how == "copied":  # the original project is left as it was
        assert not list((first / "mlartifacts").rglob("after.txt"))
    else:  # and nothing recreated the old folder
        assert not first.exists()


def test_record_finds_every_parent_run_that_made_the_models_latest_first(clean_env, tmp_path: Path):
    """`record` finds the sweeps by the models' digest: every finished parent run with it (two
    queued experiments with the same params, `dvc repro -f train`), latest first, each with
    its own child runs; none for models no run made."""
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import runs

    clean_env.chdir(tmp_path)
    experiment_id = store.use_experiment("l2-lab")
    made = {}
    for exp_name in ("exp_a", "exp_b"):
        clean_env.setenv("DVC_EXP_NAME", exp_name)
        with runs.sweep_runs(
            experiment_id, ["plain"], {"plain": {"entry": "plain", "seed": "42"}}
        ) as sweep:
            records.set_tags(sweep.parent_id, {"models_digest": "same-models"})
        made[exp_name] = sweep
    with runs.sweep_runs(experiment_id, ["plain"], {}) as other:
        records.set_tags(other.parent_id, {"models_digest": "other-models"})

    found = runs.find_sweeps("same-models")
    assert [s.parent_id for s in found] == [made["exp_b"].parent_id, made["exp_a"].parent_id]
    for sweep in found:
        own = made[sweep.tags["dvc_exp_name"]]
        assert sweep.run_of("plain", 42) == own.child_ids["plain"]
    assert runs.find_sweeps("never-made") == []
    statuses = {r.info.status for r in MlflowClient().search_runs([experiment_id])}
    assert statuses == {"FINISHED"}


def test_only_the_newest_sweeps_views_are_kept_and_a_users_views_never_go(clean_env, tmp_path):
    """MLflow's UI stops saving views at 40 per experiment; each sweep saves two (its table
    and its chart), so the lab keeps those of its newest `SWEEP_VIEWS_KEPT` sweeps and leaves
    a view the user saved alone. Real store."""
    import json

    from mlflow.tracking import MlflowClient

    from pipeline.tracking import results, views

    clean_env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    client = MlflowClient()
    experiment = client.create_experiment("views", artifact_location=str(tmp_path / "art"))
    prefix = views.SHARED_VIEW_TAG_PREFIX
    mine = prefix + "my-own-view"
    client.set_experiment_tag(experiment, mine, json.dumps({"name": "mine", "createdAt": 1}))
    extra = 3
    sweeps = [f"parent{i:02d}" for i in range(views.SWEEP_VIEWS_KEPT + extra)]

    def tags_of(parent: str) -> list[str]:
        return [prefix + views.sweep_view_key(parent), prefix + views.sweep_chart_key(parent)]

    for i, parent in enumerate(sweeps):
        for tag in tags_of(parent):
            envelope = json.dumps({"name": parent, "createdAt": 1000 + i, "state": "{}"})
            client.set_experiment_tag(experiment, tag, envelope)

    deleted = results.prune_sweep_views(client, experiment)

    assert sorted(deleted) == sorted(tag for p in sweeps[:extra] for tag in tags_of(p))
    left = {t for t in client.get_experiment(experiment).tags if t.startswith(prefix)}
    assert left == {mine} | {tag for p in sweeps[extra:] for tag in tags_of(p)}
    assert results.prune_sweep_views(client, experiment) == []  # nothing more to prune


@pytest.mark.parametrize(
    ("rate", "label"),
    [
        (0.0, "0 (e)"),
        (1e-4, "1e-4 (e)"),
        (0.003, "3e-3 (e)"),
        (0.0045, "4.5e-3 (e)"),
        (0.1, "1e-1 (e)"),
        (3.0, "3e0 (e)"),
    ],
)
def test_the_charts_rate_labels_read_as_rates(rate, label):
    from pipeline.tracking import views

    assert views.rate_label(rate, "e") == label


def test_the_charts_rate_labels_are_text_to_plotly():
    """Plotly lays strings out as categories only when more than two in three distinct
    values are not numbers (its autotype rule): each label must fail JavaScript's Number()."""
    import re

    from pipeline.tracking import views

    js_number = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$", re.IGNORECASE)
    for rate in (0.0, 1e-4, 0.01, 2.5):
        assert not js_number.match(views.rate_label(rate, "l2_1e_2"))
    with pytest.raises(ValueError, match="negative"):
        views.rate_label(-0.1, "bad")


def test_the_description_opens_with_the_verdict_then_the_links():
    from pipeline.tracking import views

    note = views.description(
        "l2_1e_2", "chosen by min: l2_1e_2, …", "7", "abc", ["r1", "r2"], task=CLASSIFICATION_TASK
    )
    first, links = note.split("\n\n")
    assert first == "**Chosen: l2_1e_2.** chosen by min: l2_1e_2, …"
    assert (
        "(#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey=l2-sweep-abc)"
        in links
    )
    chart = "viewStateShareKey=l2-sweep-abc-chart&compareRunsMode=CHART)"
    assert chart in links
    # Every entry diverged: nothing chosen, the verdict alone says so.
    assert views.description(
        None, "no entry trained", "7", "abc", [], CLASSIFICATION_TASK
    ).startswith("no entry trained\n\n")


def test_the_views_sort_the_table_by_validation_and_the_chart_by_rate():
    """The table: val_error before test_error, the chosen mark last; the chart's rows by
    log10 of the rate, last first, as MLflow 3.17 draws a text axis in reverse row order."""
    from pipeline.tracking import views

    table = views.sweep_view_state("abc", ["val_error", "test_error"], task=CLASSIFICATION_TASK)
    order = ["params.`l2`", "metrics.`val_error`", "metrics.`test_error`", "tags.`chosen`"]
    assert table["selectedColumns"] == table["columnOrder"] == order
    assert (table["orderByKey"], table["orderByAsc"]) == ("metrics.`val_error`", True)
    chart = views.sweep_chart_state("abc", task=CLASSIFICATION_TASK)
    assert (chart["orderByKey"], chart["orderByAsc"]) == ("metrics.`log10_l2`", False)
    (card,) = chart["compareRunCharts"]
    assert card["xaxis"] == {"key": views.RATE_PARAM, "type": "PARAM"}
    assert chart["compareRunSections"][0]["columns"] == 1

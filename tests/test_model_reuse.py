"""A sweep reuses, exactly, every model it has trained before: adding an entry trains that
entry's models (with folds, its fold models too), and every output comes out byte for byte
as a run that trains everything. Real DVC, MLflow and Keras on tiny params."""

from __future__ import annotations

import hashlib
import re

import pytest
from ruamel.yaml import YAML

from tests.support.docs_commands import blocks_of
from tests.support.docs_lab import run_documented
from tests.support.params import write_yaml
from tests.support.project import (
    Project,
    children_of,
    mlflow_runs,
    parent_of_models,
    run_queued_experiments,
)

pytestmark = pytest.mark.slow

# Everything a run writes that DVC or git keeps (mlflow.db and the store aside).
OUTPUTS = ("models", "metrics", "reports", "refit", "dvc.lock")


def _bytes_of(project: Project) -> dict[str, str]:
    digests = {}
    for name in OUTPUTS:
        path = project.root / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            digests[str(file.relative_to(project.root))] = hashlib.sha256(
                file.read_bytes()
            ).hexdigest()
    return digests


def _edit(project: Project, change) -> None:
    params = YAML(typ="safe").load(project.params_path.read_text())
    change(params)
    write_yaml(project.params_path, params)


def _trained(stderr: str) -> tuple[int, int]:
    """(models trained, models in the sweep) from the train stage's line."""
    found = re.search(r"\[train\] training (?:(\d+) of )?(\d+) models", stderr)
    assert found, stderr
    total = int(found.group(2))
    return int(found.group(1) or total), total


def test_an_added_entry_trains_alone_and_every_byte_matches_a_full_retrain(
    reproduced: Project,
):
    """With 2 folds: the fold models train and the entries' own come from the store (the
    project's first repro stored them); the new entry's 1 + 2 models train, the others are
    reused; a damaged stored model trains again with one warning. Then `dvc repro -f` on a
    store that cannot be written retrains all 9 with one warning per stage, and every output
    is the same bytes."""
    project = reproduced
    _edit(project, lambda p: p["choose"].update(folds=2))
    first = project.dvc("repro")
    assert _trained(first.stderr) == (4, 6), first.stderr
    store = project.root / "model-store"
    assert len(list(store.glob("??/*"))) == 6 + 1  # and the refit's model

    # One stored model of an entry on the training split damaged: it must train again.
    damaged = next(
        folder / "weights.npz"
        for folder in sorted(store.glob("??/*"))
        if '"training_set": null' in (folder / "record.json").read_text()
    )
    damaged.write_bytes(damaged.read_bytes()[:-10])
    _edit(project, lambda p: p["sweep"].update(added={"l2": 0.02}))
    grown = project.dvc("repro")
    assert _trained(grown.stderr) == (3 + 1, 9), grown.stderr
    assert grown.stderr.count("is damaged") == 1, grown.stderr
    reused_bytes = _bytes_of(project)

    runs = mlflow_runs(project)
    parent = parent_of_models(project, runs)
    assert parent.data.metrics["models_trained"] == 4
    assert parent.data.metrics["models_reused"] == 5
    entry_runs = {
        r.info.run_name: r
        for r in children_of(runs, parent.info.run_id)
        if not r.info.run_name.startswith("refit")
    }
    assert set(entry_runs) == {"plain", "layerwise", "added"}
    this_sweep = {parent.info.run_id, *(c.info.run_id for c in entry_runs.values())}
    reused = [
        r
        for r in runs
        if r.data.tags.get("reused") == "true"
        and r.data.tags.get("mlflow.parentRunId") in this_sweep
        and not r.info.run_name.startswith("refit")
    ]
    assert len(reused) == 5
    trainers = {r.info.run_id: r for r in runs}
    for run in reused:
        trainer = trainers[run.data.tags["reused_from_run"]]
        assert trainer.data.tags["entry"] == run.data.tags["entry"]
        assert trainer.data.tags.get("fold") == run.data.tags.get("fold")
        assert run.data.tags.get("model_uri") == trainer.data.tags.get("model_uri")
        assert run.data.params == trainer.data.params  # the same model, recorded whole
        assert len(run.data.metrics) >= len(trainer.data.metrics) > 0
        assert run.info.status == "FINISHED"

    blocked = project.root / "not-a-folder"
    blocked.write_text("")
    project.env["L2LAB_MODEL_STORE"] = str(blocked / "store")
    forced = project.dvc("repro", "-f")
    assert _trained(forced.stderr) == (9, 9), forced.stderr
    assert "`dvc repro -f` forces it" in forced.stderr
    for stage in ("train", "refit"):
        assert forced.stderr.count(f"[{stage}] warning: cannot write the model store") == 1
    assert _bytes_of(project) == reused_bytes


def test_queued_experiments_and_a_refine_round_reuse_the_workspace_models(
    reproduced: Project,
):
    """Two queued experiments, run at once, each add the same rate under its own name: each
    trains that one model (the same key, at the same time: both succeed, one copy kept) and
    reuses the workspace's two. Then the commands of "docs/reuse.md": show and prune."""
    project = reproduced
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "reproduced")
    run_queued_experiments(project, ["+sweep.new_a={l2: 0.05}", "+sweep.new_b={l2: 0.05}"], jobs=2)
    runs = mlflow_runs(project)
    queued = [r for r in runs if r.data.tags.get("sweep") == "parent"
              and r.data.tags.get("dvc_exp_name")]  # fmt: skip
    assert len(queued) == 2
    for parent in queued:
        assert parent.data.metrics["models_reused"] == 2, parent.data.tags["dvc_exp_name"]
        assert parent.data.metrics["models_trained"] == 1
    store = project.root / "model-store"
    assert len(list(store.glob("??/*"))) == 3
    assert not list((store / ".incoming").iterdir())

    for text in blocks_of("docs/reuse.md"):  # show, then prune what 30 days did not use
        run_documented(project, text)
    assert len(list(store.glob("??/*"))) == 3
    shown = project.run("python", "-m", "pipeline.model_store")
    assert f"{store}: 3 models" in shown.stderr, shown.stderr
    emptied = project.run("python", "-m", "pipeline.model_store", "prune", "--all")
    assert "removed 3 models" in emptied.stderr and not list(store.glob("??/*"))

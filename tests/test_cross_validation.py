"""`choose.folds: 3` end to end: `dvc repro` on tiny params trains every entry on each fold,
and the metrics files, best.json, choosing.md and the nested MLflow runs say so; choosing.md's
Decision table and "What to try next" agree on every pair, as a user reads them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pipeline.choosing.statistics import mean_and_se
from tests.support.choosing_md import decision_table, next_claims
from tests.support.params import tiny_params, write_yaml
from tests.support.project import Project, children_of, make_project, mlflow_runs, parent_of_models

K = 3
# Four rates on all layers, so the chosen rate has neighbours for "What to try next" to judge.
SWEEP = {name: {"l2": rate} for name, rate in
         [("l2_0", 0.0), ("l2_1e_3", 0.001), ("l2_1e_2", 0.01), ("l2_1e_1", 0.1)]}  # fmt: skip
Z = 1.959963984540054  # the normal 97.5% quantile


@pytest.fixture(scope="module")
def cross_validated(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One tiny project reproduced with 3 folds, shared by this module's tests."""
    lab = make_project(tmp_path_factory.mktemp("cv") / "lab")
    params = tiny_params()
    params["choose"] = {"folds": K, "rule": "one_se"}
    params["sweep"] = SWEEP
    write_yaml(lab.params_path, params)
    result = lab.dvc("repro")
    lab.repro_output = result.stdout + result.stderr  # the stages log to stderr
    return lab


@pytest.mark.slow
def test_every_entry_has_its_cv_error_and_the_decision_uses_it(cross_validated: Project):
    root = cross_validated.root
    pool_rows = sum(json.loads((root / "data/prepared/meta.json").read_text())["rows"][s]
                    for s in ("train", "val"))  # fmt: skip
    held_out = np.load(root / "evaluation" / "held_out_cv.npz")
    assert len(held_out["labels"]) == pool_rows
    cv = {}
    for entry in SWEEP:
        metrics = json.loads((root / "metrics" / f"{entry}.json").read_text())
        assert metrics["n_folds"] == K
        # Every pooled row is predicted by the fold model that held it out: their mean error
        # is the folds' errors weighted by fold size, within rounding of the unweighted mean
        # (fold sizes differ by at most one row).
        assert (held_out[entry] >= 0).all()
        pooled_error = float(np.mean(held_out[entry] != held_out["labels"]))
        assert pooled_error == pytest.approx(metrics["cv_error_mean"], abs=2e-3)
        assert 0 < metrics["cv_error_se"] < 0.5
        cv[entry] = metrics
        folds = sorted((root / "models" / entry / "folds").iterdir())
        assert [f.name for f in folds] == [f"fold_{i}" for i in range(K)]
    best = json.loads((root / "reports" / "best.json").read_text())
    said = json.loads((root / "reports" / "decision.json").read_text())
    assert said["rule"] in ("one_se", "min") and said["figure"] == "cv_error_mean"
    # The one-SE rule's SE: the fold SE, never below the Wilson SE on the pooled rows,
    # sqrt(n p (1 - p) + z²/4) / (n + z²) (every fold can score alike: fold SE 0).
    def rule_se(m: dict) -> float:
        p = m["cv_error_mean"]
        wilson = math.sqrt(pool_rows * p * (1 - p) + Z * Z / 4) / (pool_rows + Z * Z)
        return max(m["cv_error_se"], wilson)

    chosen = cv[said["chosen_entry"]]
    assert best["chosen_figure"] == chosen["cv_error_mean"]
    assert best["chosen_se"] == pytest.approx(rule_se(chosen), rel=1e-4)
    lowest = min(cv.values(), key=lambda m: m["cv_error_mean"])
    assert best["chosen_figure"] <= lowest["cv_error_mean"] + rule_se(lowest) + 1e-9
    choosing_md = (root / "reports" / "choosing.md").read_text()
    assert "## Decision" in choosing_md
    assert f"standard error over {K} stratified folds of the {pool_rows}" in choosing_md
    assert f"**Chosen: {said['chosen_entry']}**, mean CV error" in choosing_md
    assert said["verdict"] in cross_validated.repro_output  # the console line says it too
    # The SE is the folds' sample standard deviation over sqrt(k).
    assert mean_and_se([0.1, 0.2])[1] == pytest.approx(0.05)


@pytest.mark.slow
def test_fold_runs_nest_under_their_entry_run(cross_validated: Project):
    runs = mlflow_runs(cross_validated)
    parent = parent_of_models(cross_validated, runs)
    entry_runs = children_of(runs, parent.info.run_id)
    assert sorted(r.info.run_name for r in entry_runs if "refit" not in r.data.tags) == sorted(
        SWEEP
    )
    for entry_run in entry_runs:
        if "refit" in entry_run.data.tags:
            continue
        folds = children_of(runs, entry_run.info.run_id)
        assert sorted(int(r.data.tags["fold"]) for r in folds) == list(range(K))
        assert all(r.info.status == "FINISHED" for r in folds)
        assert {r.data.tags["entry"] for r in folds} == {entry_run.info.run_name}
        assert not math.isnan(entry_run.data.metrics["cv_error_mean"])
        assert "cv_error_se" in entry_run.data.metrics


@pytest.mark.slow
def test_the_chosen_entry_is_refit_on_every_pooled_row_and_tested_once(cross_validated):
    root = cross_validated.root
    best = json.loads((root / "reports" / "best.json").read_text())
    said = json.loads((root / "reports" / "decision.json").read_text())
    refit = json.loads((root / "refit" / "refit.json").read_text())
    meta = json.loads((root / "data/prepared/meta.json").read_text())
    assert refit["entry"] == said["chosen_entry"]
    # The decision refit made is the one the report rendered.
    decided = json.loads((root / "refit" / "decision.json").read_text())["decision"]
    assert decided["choice"]["chosen"]["name"] == said["chosen_entry"]
    assert refit["train_rows"] == meta["rows"]["train"] + meta["rows"]["val"]
    assert refit["test_rows"] == meta["rows"]["test"]
    assert refit["test_error_ci_low"] <= refit["test_error"] <= refit["test_error_ci_high"]
    assert (best["answer"], best["answer_ci_low"], best["answer_ci_high"]) == (
        refit["test_error"],
        refit["test_error_ci_low"],
        refit["test_error_ci_high"],
    )
    assert (root / "refit" / "model.keras").is_file()
    assert "**Refit** on all" in (root / "reports" / "choosing.md").read_text()
    runs = mlflow_runs(cross_validated)
    parent = parent_of_models(cross_validated, runs)
    (refit_run,) = [r for r in children_of(runs, parent.info.run_id) if "refit" in r.data.tags]
    assert refit_run.info.status == "FINISHED"
    assert refit_run.data.tags["entry"] == said["chosen_entry"]
    assert refit_run.data.metrics["test_error"] == pytest.approx(refit["test_error"])


@pytest.mark.slow
def test_what_to_try_next_judges_each_pair_as_the_decision_table_does(cross_validated):
    """The issue's contradiction, read from the real page: a neighbour is told apart in "What
    to try next" only where the Decision table's row for that pair says so, quoted with the
    same Holm-adjusted p; with "L2 makes no measurable difference" nothing is proposed."""
    root = cross_validated.root
    text = (root / "reports" / "choosing.md").read_text()
    said = json.loads((root / "reports" / "decision.json").read_text())
    table, claims = decision_table(text), next_claims(text)
    assert set(table) == set(SWEEP) - {said["chosen_entry"]}
    assert claims, "What to try next judges no pair"  # the chosen rate has a neighbour
    for entry, claim in claims.items():
        assert table[entry] == claim, entry
    if "L2 makes no measurable difference here" in said["verdict"]:
        assert said["next_commands"] == []
        assert "no new rate could change that answer, so no bracket is proposed." in text
        assert claims["l2_0"] == (table["l2_0"][0], False)
    assert ("dvc exp run --queue" in text) == bool(said["next_commands"])

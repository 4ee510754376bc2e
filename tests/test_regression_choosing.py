"""The regression judge and decision on hand-made squared errors with known answers: the
sign-flip permutation test and the paired t-test (Diebold-Mariano) against scipy, the paired
bootstrap of the RMSE difference on the same resampled rows, standard errors from the per-row
squared errors, the one-SE rule on MSE, and a classification decision's JSON unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline import choosing
from pipeline.choosing.judge import DIEBOLD_MARIANO, MCNEMAR, SIGN_FLIP
from pipeline.choosing.next_rates import exp_show_best, next_commands
from pipeline.choosing.statistics import (
    bootstrap_rows,
    holm,
    loss_se,
    mean_loss_se,
    rmse_interval,
)
from pipeline.config.entries import EntrySpec, dense_layer_names
from pipeline.core.task import CLASSIFICATION_TASK, REGRESSION_TASK

LAYERS = dense_layer_names(2)
N = 120
SCALES = {"l2_0": 1.0, "l2_1e_3": 1.01, "l2_1e_2": 1.04, "l2_1e_1": 1.8}  # error sizes


def _entry(name: str, rate: float) -> EntrySpec:
    return EntrySpec(name, tuple((layer, rate) for layer in LAYERS), 0.0)


ENTRIES = [_entry(name, float(name[3:].replace("_", "-") if name != "l2_0" else 0))
           for name in SCALES]  # fmt: skip


def _predictions(seed: int = 5) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Targets in units and each entry's predictions: a shared error per row scaled per entry,
    plus a little of its own (a paired design, heavy-tailed like t(4))."""
    rng = np.random.default_rng(seed)
    targets = rng.normal(100.0, 20.0, N)
    shared = rng.standard_t(4, N) * 10.0
    return targets, {
        name: targets + scale * shared + rng.normal(0, 1.0, N) for name, scale in SCALES.items()
    }


def _table(targets, predicted, judge) -> pd.DataFrame:
    rows = []
    for name, p in predicted.items():
        mse = float(np.mean((p - targets) ** 2))
        rows.append({"entry": name, "val_mse": mse, "val_rmse": math.sqrt(mse),
                     "val_mae": float(np.mean(np.abs(p - targets))),
                     "test_rmse": 2 * math.sqrt(mse)})  # fmt: skip
    return pd.DataFrame(rows).sort_values("val_mse", kind="stable").reset_index(drop=True)


def _sign_flip_p(a, b) -> float:
    """scipy's sign-flip test of the mean of a - b, with the judge's 9,999 patterns (seed 0)."""
    return stats.permutation_test(
        (a - b,), lambda x, axis: np.mean(x, axis=axis), vectorized=True,
        permutation_type="samples", n_resamples=9_999, batch=1_000,
        random_state=np.random.default_rng(0),
    ).pvalue  # fmt: skip


def test_the_judge_s_losses_are_squared_errors_and_its_test_is_scipy_s_sign_flip():
    targets, predicted = _predictions()
    judge = choosing.Judge.of_values(targets, predicted)
    assert judge.test == SIGN_FLIP and judge.n_rows == N
    a = (predicted["l2_0"] - targets) ** 2
    b = (predicted["l2_1e_1"] - targets) ** 2
    np.testing.assert_array_equal(judge.losses["l2_0"], a)
    assert judge.p_value("l2_0", "l2_1e_1") == _sign_flip_p(a, b)
    assert judge.p_value("l2_0", "l2_1e_1") == judge.p_value("l2_0", "l2_1e_1")  # seeded
    # The t-test on the differences (Diebold-Mariano), the judge's other regression test.
    t_judge = choosing.Judge(judge.losses, test=DIEBOLD_MARIANO)
    assert t_judge.p_value("l2_0", "l2_1e_1") == stats.ttest_rel(a, b).pvalue
    assert t_judge.p_value("l2_0", "l2_1e_1") == stats.ttest_1samp(a - b, 0.0).pvalue
    # The same rows resampled for both entries: the interval of RMSE(B) - RMSE(A).
    rows = bootstrap_rows(N, 42)
    test = judge.compare("l2_0", "l2_1e_1", rows)
    diffs = np.sqrt(b[rows].mean(axis=1)) - np.sqrt(a[rows].mean(axis=1))
    assert (test.diff_low, test.diff_high) == tuple(np.quantile(diffs, [0.025, 0.975]))
    assert (test.only_a_worse, test.only_b_worse) == (int(np.sum(a > b)), int(np.sum(b > a)))
    assert test.diff_low > 0  # l2_1e_1's errors are 1.8 times as large
    # Holm over the comparisons against one entry, as for classification.
    judged = judge.against("l2_0", ["l2_1e_3", "l2_1e_1"], seed=42)
    raw = [_sign_flip_p(a, (predicted[o] - targets) ** 2) for o in ("l2_1e_3", "l2_1e_1")]
    assert [p for _, p in judged] == holm(raw)


def test_identical_predictions_have_p_1_and_a_zero_interval():
    targets, predicted = _predictions()
    judge = choosing.Judge.of_values(targets, {"a": predicted["l2_0"], "b": predicted["l2_0"]})
    assert judge.p_value("a", "b") == 1.0
    test = judge.compare("a", "b", bootstrap_rows(N, 1))
    assert (test.p_value, test.diff_low, test.diff_high) == (1.0, 0.0, 0.0)


def test_the_held_out_file_s_dtype_says_which_judge():
    labels = np.array([0, 1, 1], dtype=np.int16)
    classes = choosing.Judge.of_held_out(labels, {"a": np.array([0, 0, 1], dtype=np.int16)})
    assert classes.test == MCNEMAR and list(classes.losses["a"]) == [0.0, 1.0, 0.0]
    values = choosing.Judge.of_held_out(np.array([1.0, 2.0]), {"a": np.array([1.5, 4.0])})
    assert values.test == SIGN_FLIP and list(values.losses["a"]) == [0.25, 4.0]
    with pytest.raises(ValueError, match="unknown paired test 'z-test'"):
        choosing.Judge({}, test="z-test")


def test_standard_errors_and_the_test_interval_from_rows():
    losses = np.array([1.0, 4.0, 0.0, 9.0, 2.0])
    assert loss_se(losses) == pytest.approx(np.std(losses, ddof=1) / math.sqrt(5), rel=1e-15)
    assert mean_loss_se(losses, fold_se=10.0) == 10.0  # folds: the larger
    assert mean_loss_se(losses, fold_se=0.0) == loss_se(losses)
    with pytest.raises(ValueError, match="at least 2 rows"):
        loss_se(np.array([1.0]))
    rows = bootstrap_rows(5, 42)
    low, high = np.quantile(np.sqrt(losses[rows].mean(axis=1)), [0.025, 0.975])
    assert rmse_interval(losses, 42) == (low, high)
    assert low < math.sqrt(losses.mean()) < high


@pytest.mark.parametrize("rule", ["min", "one_se"])
def test_the_decision_chooses_on_mse_with_its_se_from_the_rows(rule):
    targets, predicted = _predictions()
    judge = choosing.Judge.of_values(targets, predicted)
    table = _table(targets, predicted, judge)
    intervals = {name: (1.0, 2.0 + i) for i, name in enumerate(SCALES)}
    decision = choosing.decide(ENTRIES, table, judge, rule=rule, seed=42, test_rows=50,
                               task=REGRESSION_TASK, test_intervals=intervals)  # fmt: skip
    assert (decision.figure, decision.test_figure) == ("val_mse", "test_rmse")
    ranked = table["entry"].tolist()
    squared = {name: (p - targets) ** 2 for name, p in predicted.items()}
    best = ranked[0]
    best_se = np.std(squared[best], ddof=1) / math.sqrt(N)
    assert decision.choice.best.se == pytest.approx(best_se, rel=1e-12)
    mse = dict(zip(table["entry"], table["val_mse"], strict=True))
    if rule == "min":
        expected = best
    else:  # the most regularized within one SE of the lowest MSE
        within = [name for name in ranked if mse[name] <= mse[best] + best_se]
        expected = max(within, key=lambda name: float(name[3:].replace("_", "-") or 0)
                       if name != "l2_0" else 0.0)  # fmt: skip
        assert expected != best  # the rule has a choice to make here
    assert decision.chosen.name == expected
    assert decision.rmse(decision.chosen) == pytest.approx(math.sqrt(mse[expected]), rel=1e-12)
    assert decision.test_value == 2 * math.sqrt(mse[expected])
    assert (decision.test_ci_low, decision.test_ci_high) == intervals[expected]
    assert decision.test_interval == "percentile bootstrap" and decision.task == "regression"
    l2_1e_1 = decision.comparison_with("l2_1e_1")
    assert l2_1e_1 is None or l2_1e_1.apart  # 1.8 times the errors: told apart
    payload = json.loads(json.dumps(decision.to_json()))
    assert payload["task"] == "regression"
    assert choosing.Decision.from_json(payload) == decision


def test_with_folds_the_se_is_the_larger_of_the_folds_and_the_rows():
    targets, predicted = _predictions()
    judge = choosing.Judge.of_values(targets, predicted)
    table = _table(targets, predicted, judge).rename(columns={"val_mse": "cv_mse_mean"})
    row_se = {name: loss_se(judge.losses[name]) for name in predicted}
    table["cv_mse_se"] = [row_se[name] * (3.0 if name == "l2_1e_2" else 0.5)
                          for name in table["entry"]]  # fmt: skip
    intervals = dict.fromkeys(SCALES, (0.0, 1.0))
    decision = choosing.decide(ENTRIES, table, judge, rule="min", seed=42, test_rows=50, folds=5,
                               task=REGRESSION_TASK, test_intervals=intervals)  # fmt: skip
    assert decision.figure == "cv_mse_mean"
    ses = {c.other.name: c.other.se for c in decision.comparisons} | {
        decision.chosen.name: decision.chosen.se
    }
    for name, se in ses.items():
        assert se == (3.0 * row_se[name] if name == "l2_1e_2" else row_se[name])


def test_ties_on_mse_are_broken_by_mae_and_a_missing_test_interval_is_refused():
    targets, predicted = _predictions()
    predicted = {"l2_0": predicted["l2_0"], "l2_1e_1": predicted["l2_0"]}
    judge = choosing.Judge.of_values(targets, predicted)
    table = _table(targets, predicted, judge)
    table.loc[table["entry"] == "l2_0", "val_mae"] += 1.0  # the same MSE, a worse MAE
    entries = [ENTRIES[0], ENTRIES[-1]]
    intervals = {"l2_1e_1": (0.0, 1.0)}
    decision = choosing.decide(entries, table, judge, rule="min", seed=42, test_rows=50,
                               task=REGRESSION_TASK, test_intervals=intervals)  # fmt: skip
    assert decision.chosen.name == "l2_1e_1" and decision.l2_unmeasurable
    refused = "no test interval for 'l2_1e_1'; run `dvc repro evaluate`"
    with pytest.raises(ValueError, match=refused):
        choosing.decide(entries, table, judge, rule="min", seed=42, test_rows=50,
                        task=REGRESSION_TASK)  # fmt: skip


def test_a_classification_decision_keeps_its_json_fields():
    labels = np.zeros(40, dtype=np.int16)
    predicted = {"l2_0": labels.copy(), "l2_1e_1": labels.copy()}
    predicted["l2_1e_1"][:10] = 1
    judge = choosing.Judge.of_classes(labels, predicted)
    table = pd.DataFrame({"entry": ["l2_0", "l2_1e_1"], "val_error": [0.0, 0.25],
                          "test_error": [0.1, 0.3], "val_xent": [0.0, 0.0]})  # fmt: skip
    decision = choosing.decide([ENTRIES[0], ENTRIES[-1]], table, judge, rule="min", seed=1,
                               test_rows=100, task=CLASSIFICATION_TASK)  # fmt: skip
    assert set(decision.to_json()) == {
        "choice", "rule_asked", "figure", "test_figure", "n_rows", "test", "correction",
        "alpha", "comparisons", "zero", "test_value", "test_rows", "test_ci_low",
        "test_ci_high", "folds", "refit",
    }  # fmt: skip
    assert decision.rmse(decision.chosen) is None
    assert exp_show_best(REGRESSION_TASK) == (
        "dvc exp show --drop '.*' --keep 'Experiment|best_entry|best_val_rmse|best_test_rmse' "
        "--sort-by best_val_rmse --sort-order asc"
    )


def test_points_and_the_bracket_take_the_regression_s_names():
    targets, predicted = _predictions()
    judge = choosing.Judge.of_values(targets, predicted)
    table = _table(targets, predicted, judge)
    points = choosing.place(ENTRIES, table, 300, 0.0, 1000, REGRESSION_TASK)
    by_entry = {p.entry: p for p in points}
    for row in table.to_dict("records"):
        assert by_entry[row["entry"]].val == row["val_rmse"]
        assert by_entry[row["entry"]].test == row["test_rmse"]
    # With folds a point sits at the root of its mean CV MSE: RMSE's units, MSE's order.
    folded = table.assign(cv_mse_mean=table["val_mse"] * 4)
    points = choosing.place(ENTRIES, folded, 300, 0.0, 1000, REGRESSION_TASK)
    assert [p.val for p in points] == [2 * math.sqrt(v) for v in table["val_mse"]]
    intervals = dict.fromkeys(SCALES, (0.0, 1.0))
    decision = choosing.decide(ENTRIES, table, judge, rule="min", seed=42, test_rows=50,
                               task=REGRESSION_TASK, test_intervals=intervals)  # fmt: skip
    analysis = choosing.analyse(
        ENTRIES, table, judge, layers=LAYERS, default_rows=300, default_noise=0.0,
        pool_rows=1000, decision=decision, task=REGRESSION_TASK,
    )  # fmt: skip
    assert analysis.test == SIGN_FLIP
    # l2_1e_3, the only neighbour of the chosen rate 0, cannot be told apart: no bracket.
    assert decision.chosen.name == "l2_0" and analysis.bracket.commands == ()
    commands = next_commands({"l2_5e_3": 0.005}, 0.01, REGRESSION_TASK)
    assert commands[-1] == exp_show_best(REGRESSION_TASK)

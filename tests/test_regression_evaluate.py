"""Stage `evaluate` on a hand-made prepared regression folder and two saved one-unit Keras
models (no training): metrics/<entry>.json holds the task's headline figures in the target's
units, as numpy computes them from the same weights; held_out.npz holds float64 targets and
predictions in units; the details hold the training-mean baseline and the bootstrap interval of
the test RMSE; and the decision made from those files chooses on MSE."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core import contracts
from pipeline.core.task import REGRESSION_TASK
from pipeline.datasets import prepared
from tests.support.params import tiny_params, write_yaml

pytestmark = pytest.mark.usefixtures("tensorflow")

MEAN, STD, SEED = 50.0, 8.0, 42
ROWS = {"train": 40, "val": 30, "test": 25}
ENTRIES = {"plain": 0.0, "strong": 0.1}


def _prepared(folder: Path) -> dict[str, prepared.Split]:
    rng = np.random.default_rng(0)
    w = np.array([1.0, -0.5, 0.25])
    splits = {}
    for name, n in ROWS.items():
        x = rng.normal(size=(n, 3)).astype(np.float32)
        y = ((x @ w) + rng.normal(0, 0.5, n)).astype(np.float32)  # standardised-ish target
        splits[name] = prepared.Split(x, y)
    folder.mkdir()
    prepared.write_splits(folder, splits, np.zeros(ROWS["train"], bool))
    meta = contracts.PreparedMeta(
        source="hand-made", class_names=(), n_features=3, rows=ROWS, train_labels_flipped=0,
        input_shape=(3,), task="regression", target_mean=MEAN, target_std=STD,
    )  # fmt: skip
    contracts.write_meta(folder, meta)
    return splits


def _models(folder: Path) -> dict:
    """One linear unit after 4 tanh units per entry, fixed weights, saved as train saves."""
    import keras

    weights = {}
    towers = []
    for i, (entry, rate) in enumerate(ENTRIES.items()):
        l2 = keras.regularizers.L2(rate) if rate else None
        model = keras.Sequential([
            keras.Input((3,)),
            keras.layers.Dense(4, "tanh", kernel_regularizer=l2, name="hidden_1"),
            keras.layers.Dense(1, kernel_regularizer=l2, name="output"),
        ])  # fmt: skip
        rng = np.random.default_rng(10 + i)
        model.set_weights([rng.normal(0, 0.8, v.shape).astype("float32") for v in model.weights])
        (folder / entry).mkdir(parents=True)
        model.save(folder / entry / contracts.MODEL_FILE)
        weights[entry] = [np.asarray(v, np.float64) for v in model.get_weights()]
        towers.append(contracts.TrainedModel(entry, SEED, entry, None))
    contracts.write_sweep_record(
        folder, contracts.SweepRecord(tuple(towers), ("hidden_1", "output"))
    )
    return weights


def _in_units(weights, x: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = weights
    return (np.tanh(x.astype(np.float64) @ w1 + b1) @ w2 + b2)[:, 0] * STD + MEAN


def test_evaluate_writes_a_regression_s_figures_in_units(tmp_path: Path):
    from pipeline import choosing, evaluate
    from pipeline.core.spread import rmse_interval
    from pipeline.reporting import readers

    params = tiny_params()
    params["sweep"] = {entry: {"l2": rate} for entry, rate in ENTRIES.items()}
    params["base"]["seed"] = SEED
    write_yaml(tmp_path / "params.yaml", params)
    splits = _prepared(tmp_path / "prepared")
    weights = _models(tmp_path / "models")
    out, details = tmp_path / "metrics", tmp_path / "evaluation"
    evaluate.evaluate(tmp_path / "params.yaml", tmp_path / "prepared", tmp_path / "models",
                      out, details)  # fmt: skip

    targets = {name: s.labels.astype(np.float64) * STD + MEAN for name, s in splits.items()}
    train_mean = float(targets["train"].mean())
    with np.load(details / contracts.HELD_OUT_FILE) as held_out:
        assert held_out[contracts.HELD_OUT_LABELS].dtype == np.float64
        np.testing.assert_allclose(held_out[contracts.HELD_OUT_LABELS], targets["val"], 1e-6)
        predicted_val = {entry: held_out[entry] for entry in ENTRIES}
    rows = []
    for entry in ENTRIES:
        predicted = {n: _in_units(weights[entry], s.features) for n, s in splits.items()}
        np.testing.assert_allclose(predicted_val[entry], predicted["val"], rtol=1e-5)
        assert predicted_val[entry].dtype == np.float64
        mse = {n: float(np.mean((predicted[n] - targets[n]) ** 2)) for n in splits}
        metrics = json.loads((out / f"{entry}.json").read_text())
        assert set(metrics) == set(REGRESSION_TASK.headline)
        assert metrics["val_mse"] == pytest.approx(mse["val"], rel=1e-4)
        assert metrics["test_rmse"] == pytest.approx(math.sqrt(mse["test"]), rel=1e-4)
        assert metrics["val_mae"] == pytest.approx(
            np.mean(np.abs(predicted["val"] - targets["val"])), rel=1e-4
        )
        found = json.loads((details / f"{entry}.json").read_text())
        assert found["baseline"] == {
            "predictor": "training mean",
            "prediction": pytest.approx(train_mean, rel=1e-6),
            **{f"{n}_rmse": pytest.approx(math.sqrt(np.mean((targets[n] - train_mean) ** 2)), 1e-6)
               for n in splits},
        }  # fmt: skip
        errors = _in_units(weights[entry], splits["test"].features) - targets["test"]
        low, high = found["test_interval"]
        assert (low, high) == pytest.approx(rmse_interval(errors**2, SEED), rel=1e-4)
        assert low < math.sqrt(mse["test"]) < high
        rows.append({"entry": entry, **found["seeds"][0]["metrics"]})

    # The decision made from evaluate's files: the judge over the float64 held-out rows.
    from pipeline.config import load_config, resolve_entries

    entries = resolve_entries(load_config(tmp_path / "params.yaml"), ("hidden_1", "output"))
    judge = readers.read_judge(details)
    table = pd.DataFrame(rows).sort_values("val_mse").reset_index(drop=True)
    intervals = readers.read_test_intervals(details, list(ENTRIES))
    decision = choosing.decide(entries, table, judge, rule="min", seed=SEED, test_rows=25,
                               task=REGRESSION_TASK, test_intervals=intervals)  # fmt: skip
    assert decision.chosen.name == table["entry"].iloc[0]
    assert decision.chosen.se == pytest.approx(
        np.std(judge.losses[decision.chosen.name], ddof=1) / math.sqrt(ROWS["val"])
    )
    assert [decision.test_ci_low, decision.test_ci_high] == intervals[decision.chosen.name]

    # The refit's scoring of a model on the test rows: the same model, the same seed, the
    # same interval as evaluate's; refit.json's names are the task's.
    import keras

    from pipeline import refit

    chosen = next(e for e in entries if e.name == decision.chosen.name)
    model = keras.saving.load_model(tmp_path / "models" / chosen.name / contracts.MODEL_FILE)
    meta = contracts.read_meta(tmp_path / "prepared")
    result = refit.score_on_test(model, chosen, decision, meta, tmp_path / "prepared", SEED)
    assert result["test_rows"] == ROWS["test"] and result["train_rows"] == 70
    assert result["test_rmse"] == contracts.rounded(decision.test_value)
    assert [result["test_rmse_ci_low"], result["test_rmse_ci_high"]] == [
        contracts.rounded(v) for v in intervals[chosen.name]
    ]
    answer = refit.refit_answer(result, decision.test_figure)
    assert (answer.test_value, answer.test_ci_low) == (
        result["test_rmse"],
        result["test_rmse_ci_low"],
    )


def test_cross_validation_scores_a_regression_s_folds_on_mse_in_units(tmp_path: Path):
    from pipeline.config import load_config
    from pipeline.evaluate import CrossValidation

    params = tiny_params()
    params["data"]["digits"]["label_noise"] = 0.0  # a regression's labels are never flipped
    params["base"]["seed"] = SEED
    write_yaml(tmp_path / "params.yaml", params)
    config = load_config(tmp_path / "params.yaml")
    rng = np.random.default_rng(1)
    pool = prepared.Split(
        rng.normal(size=(36, 3)).astype(np.float32), rng.normal(size=36).astype(np.float32)
    )
    meta = contracts.PreparedMeta(
        source="hand-made", class_names=(), n_features=3, rows=ROWS, train_labels_flipped=0,
        input_shape=(3,), task="regression", target_mean=MEAN, target_std=STD,
    )  # fmt: skip
    cv = CrossValidation(pool, 2, meta, config)
    weights = _models(tmp_path / "models")  # fold i's model: entry i's weights
    towers = [
        contracts.TrainedModel("e", SEED, entry, None, fold=i) for i, entry in enumerate(ENTRIES)
    ]
    found = cv.score("e", towers, tmp_path / "models")
    targets = pool.labels.astype(np.float64) * STD + MEAN
    fold_mse, pooled = [], np.zeros(36)
    for i, entry in enumerate(ENTRIES):
        _, held_out, rows = cv.sets[i]
        pooled[rows] = _in_units(weights[entry], held_out.features)
        fold_mse.append(float(np.mean((pooled[rows] - targets[rows]) ** 2)))
    assert found["n_folds"] == 2
    assert found["cv_mse_mean"] == pytest.approx(np.mean(fold_mse), rel=1e-4)
    assert found["cv_mse_se"] == pytest.approx(np.std(fold_mse, ddof=1) / math.sqrt(2), rel=1e-4)
    assert cv.predictions["e"].dtype == np.float64
    np.testing.assert_allclose(cv.predictions["e"], pooled, rtol=1e-5)
    np.testing.assert_allclose(cv.predictions[contracts.HELD_OUT_LABELS], targets, rtol=1e-6)
    baseline = cv.baseline()
    for i, fold in enumerate(baseline["folds"]):
        train, held_out, rows = cv.sets[i]
        mean = float(np.mean(train.labels.astype(np.float64) * STD + MEAN))
        assert fold["prediction"] == pytest.approx(mean, rel=1e-12)
        assert fold["mse"] == pytest.approx(np.mean((targets[rows] - mean) ** 2), rel=1e-12)
    assert baseline["cv_mse_mean"] == np.mean([f["mse"] for f in baseline["folds"]])

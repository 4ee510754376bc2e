"""A regression sweep's evaluated outputs, written by hand, for the report's tests.

What `prepare`, `train`, `evaluate` and `refit` leave for `report` (core/contracts.py and the
contract of core/task.py for a regression): meta.json with the target's mean and standard
deviation, each model's history.csv in the target's units, metrics/<entry>.json with the
task's headline figures, evaluation/<entry>.json with the per-seed figures and the training
mean as the baseline, held_out.npz with float targets and predictions in units, and
refit/decision.json. The decision is built from choosing's dataclasses with the figures the
judge computes for a regression (the MSE of the per-row squared errors, its standard error,
a paired t-test of the squared-error differences): the one place to adapt when the judge's
decision gains fields.

With `folds`, the decision is on the mean CV MSE (each entry's MSE scaled by 1.1 as its fold
figure, the held-out rows those of validation) and a refit answers; with a second seed, the
headline figures get their mean and spread. Three entries: rate 0 and 0.01 fit the target
about equally well (the judge cannot tell them apart: "L2 makes no measurable difference
here"), rate 1 collapses to a constant.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pipeline import choosing
from pipeline.choosing.decision import Comparison, Refit
from pipeline.choosing.statistics import Candidate, Choice, PairedTest, holm
from pipeline.config.entries import dense_layer_names
from pipeline.core import contracts
from pipeline.core.task import REGRESSION_TASK
from tests.support.params import tiny_params, write_yaml

TARGET = "body_mass_g"
TARGET_MEAN, TARGET_STD = 4200.0, 800.0
RATES = {"l2_0": 0.0, "l2_1e_2": 0.01, "l2_1": 1.0}
LAYERS = tuple(dense_layer_names(2))
ROWS = {"train": 200, "val": 60, "test": 80}
# Every fitting entry's predictions share one residual per row (target units), plus a part of
# their own: a paired design, as two fits of one network are. Rate 1 predicts a constant.
SHARED_NOISE = 300.0
OWN_NOISE = {"l2_0": 60.0, "l2_1e_2": 10.0}
TEST_NAME = "paired t-test (Diebold-Mariano)"


@dataclass(frozen=True)
class RegressionLab:
    root: Path
    folds: int | None
    repeat: bool  # a second seed (43)
    targets: dict[str, np.ndarray]  # split -> targets in units
    predictions: dict[str, dict[str, np.ndarray]]  # entry -> split -> predictions in units

    def path(self, name: str) -> Path:
        return self.root / name

    def figures(self, entry: str, split: str) -> dict[str, float]:
        y, p = self.targets[split], self.predictions[entry][split]
        mse = float(np.mean((p - y) ** 2))
        r2 = 1 - mse / float(np.var(y))
        return {f"{split}_rmse": math.sqrt(mse), f"{split}_mse": mse,
                f"{split}_mae": float(np.mean(np.abs(p - y))), f"{split}_r2": r2}  # fmt: skip


def params(folds: int | None = None, seeds: tuple[int, ...] = ()) -> dict:
    found = tiny_params()
    found["choose"]["folds"] = folds
    found["base"]["repeat_seeds"] = list(seeds)
    found["data"].update(
        source="csv", csv_path="data/raw/penguins.csv", target_column=TARGET, task="regression"
    )
    found["sweep"] = {name: {"l2": rate} for name, rate in RATES.items()}
    return found


def _predictions(rng, targets: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    shared = {s: SHARED_NOISE * rng.standard_normal(len(y)) for s, y in targets.items()}
    found = {}
    for entry, own in OWN_NOISE.items():
        found[entry] = {s: y + shared[s] + own * rng.standard_normal(len(y))
                        for s, y in targets.items()}  # fmt: skip
    mean = float(np.mean(targets["train"]))
    found["l2_1"] = {s: mean + 1e-3 * rng.standard_normal(len(y)) for s, y in targets.items()}
    return found


def _write_entry(lab: RegressionLab, entry: str, rng) -> dict[str, np.ndarray]:
    """The entry's files; returns its kernels (layer -> array) for kernels.npz."""
    metrics = {}
    for split in ROWS:
        metrics |= lab.figures(entry, split)
    kernels = {layer: rng.normal(scale=0.1 / (1 + 10 * RATES[entry]), size=(4, 4))
               for layer in LAYERS}  # fmt: skip
    sq = {f"sq_weights_{layer}": float(np.sum(k**2)) for layer, k in kernels.items()}
    metrics |= {
        "gen_gap": metrics["test_rmse"] - metrics["train_rmse"],
        "l2_penalty": RATES[entry] * sum(sq.values()),
        "train_loss": metrics["train_mse"] / TARGET_STD**2,
        **sq,
        "sum_sq_weights": sum(sq.values()),
        "near_linear_share": 0.9,
        "saturated_share": 0.01,
    }
    train_mean = float(np.mean(lab.targets["train"]))
    baseline = {"predictor": "training mean", "prediction": train_mean}
    for split, y in lab.targets.items():
        baseline[f"{split}_rmse"] = float(np.sqrt(np.mean((y - train_mean) ** 2)))
    # A second seed's model: the same figures 2% worse (a spread to show, not a model).
    other = {k: v * 1.02 for k, v in metrics.items()}
    seeds = [{"seed": 42, "metrics": metrics}, {"seed": 43, "metrics": other}]
    details = {"seeds": seeds[: 1 + lab.repeat], "baseline": baseline}
    contracts.write_json(lab.path(f"evaluation/{entry}.json"), details)
    headline = {name: contracts.rounded(metrics[name]) for name in REGRESSION_TASK.headline}
    if lab.repeat:
        for name in REGRESSION_TASK.spread_metrics():
            pair = [metrics[name], other[name]]
            headline[f"{name}_mean"] = contracts.rounded(float(np.mean(pair)))
            headline[f"{name}_std"] = contracts.rounded(float(np.std(pair, ddof=1)))
        headline["n_seeds"] = 2
    if lab.folds:
        headline |= {"cv_mse_mean": contracts.rounded(1.1 * metrics["val_mse"]),
                     "cv_mse_se": contracts.rounded(0.1 * metrics["val_mse"]),
                     "n_folds": lab.folds}  # fmt: skip
    contracts.write_json(lab.path(f"metrics/{entry}.json"), headline)
    folder = contracts.model_dir(lab.path("models"), entry)
    folder.mkdir(parents=True, exist_ok=True)
    epochs = np.arange(1, 4)
    pd.DataFrame({
        "epoch": epochs, "loss": 1.0 / epochs, "data_loss": 0.9 / epochs,
        "l2_penalty": 0.1 / epochs, "train_rmse": metrics["train_rmse"] * (1 + 1 / epochs),
        "val_data_loss": 1.0 / epochs, "val_rmse": metrics["val_rmse"] * (1 + 1 / epochs),
    }).to_csv(folder / contracts.HISTORY_FILE, index=False)  # fmt: skip
    return kernels


def decision_of(lab: RegressionLab) -> choosing.Decision:
    """The decision the judge makes on the validation rows' squared errors, rule min."""
    y = lab.targets["val"]
    losses = {e: (lab.predictions[e]["val"] - y) ** 2 for e in RATES}
    n = len(y)

    def candidate(entry: str) -> Candidate:
        sq = losses[entry]
        rates = tuple(RATES[entry] for _ in LAYERS)
        if lab.folds:  # the metric file's fold figures, as the decision reads them
            cv = read_json(lab.path(f"metrics/{entry}.json"))
            return Candidate(entry, cv["cv_mse_mean"], cv["cv_mse_se"], rates)
        return Candidate(entry, float(sq.mean()), float(sq.std(ddof=1) / math.sqrt(n)), rates)

    ranked = sorted((candidate(e) for e in RATES), key=lambda c: c.value)
    chosen, others = ranked[0], ranked[1:]
    rows = np.random.default_rng(42).integers(0, n, size=(2000, n))
    tests = []
    for other in others:
        a, b = losses[chosen.name], losses[other.name]
        p = float(stats.ttest_rel(b, a).pvalue)
        diffs = np.sqrt(b[rows].mean(axis=1)) - np.sqrt(a[rows].mean(axis=1))
        low, high = np.quantile(diffs, [0.025, 0.975])
        tests.append(PairedTest(int(np.sum(a > b)), int(np.sum(b > a)), p, low, high))
    adjusted = holm([t.p_value for t in tests])
    comparisons = tuple(
        Comparison(c, t, p, p < 0.05) for c, t, p in zip(others, tests, adjusted, strict=True)
    )
    test_rmse = lab.figures(chosen.name, "test")["test_rmse"]
    refit = None
    if lab.folds:  # the refit's test RMSE: 5% better than the chosen entry's own
        answer = 0.95 * test_rmse
        refit = Refit(ROWS["train"] + ROWS["val"], ROWS["test"], answer, 0.85 * answer,
                      1.15 * answer)  # fmt: skip
    return choosing.Decision(
        choice=Choice(chosen, chosen, "min", chosen.value),
        rule_asked="min",
        figure="cv_mse_mean" if lab.folds else "val_mse",
        test_figure="test_rmse",
        n_rows=n,
        test=TEST_NAME,
        correction="Holm",
        alpha=0.05,
        comparisons=comparisons,
        zero="l2_0",
        test_value=test_rmse,
        test_rows=ROWS["test"],
        test_ci_low=0.85 * test_rmse,
        test_ci_high=1.15 * test_rmse,
        folds=lab.folds,
        refit=refit,
    )


def regression_lab(
    root: Path, folds: int | None = None, seeds: tuple[int, ...] = ()
) -> RegressionLab:
    """Write the inputs of `report` for a regression sweep under `root` (`folds`: with
    choose.folds; `seeds`: repeat seeds, at most one)."""
    rng = np.random.default_rng(0)
    targets = {s: TARGET_MEAN + TARGET_STD * rng.standard_normal(n) for s, n in ROWS.items()}
    lab = RegressionLab(root, folds, bool(seeds), targets, _predictions(rng, targets))
    root.mkdir(parents=True, exist_ok=True)
    write_yaml(lab.path("params.yaml"), params(folds, seeds))
    prepared = lab.path("data/prepared")
    prepared.mkdir(parents=True)
    contracts.write_meta(prepared, contracts.PreparedMeta(
        source="csv", class_names=(), n_features=4, rows=dict(ROWS), train_labels_flipped=0,
        input_shape=(4,), pool_rows=ROWS["train"], task="regression",
        target_mean=TARGET_MEAN, target_std=TARGET_STD,
    ))  # fmt: skip
    kernels = {entry: _write_entry(lab, entry, rng) for entry in RATES}
    towers = tuple(contracts.TrainedModel(e, 42, e, None) for e in RATES)
    contracts.write_sweep_record(lab.path("models"), contracts.SweepRecord(towers, LAYERS))
    by_key = {f"{e}/{layer}": k for e, ks in kernels.items() for layer, k in ks.items()}
    np.savez(lab.path("evaluation") / contracts.KERNELS_FILE, **by_key)
    held_out = {e: lab.predictions[e]["val"].astype(np.float64) for e in RATES}
    held_out[contracts.HELD_OUT_LABELS] = targets["val"].astype(np.float64)
    np.savez(lab.path("evaluation") / contracts.HELD_OUT_FILE, **held_out)
    if folds:  # the pooled held-out folds' predictions: here the validation rows'
        np.savez(lab.path("evaluation") / contracts.HELD_OUT_CV_FILE, **held_out)
    refit = lab.path("refit")
    contracts.write_json(refit / contracts.REFIT_FILE, {"refit": int(bool(folds))})
    contracts.write_decision(refit, decision_of(lab).to_json())
    return lab


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())

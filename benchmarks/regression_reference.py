"""scikit-learn's reference on the lab's own rows: is the lab's RMSE sensible?

Given a prepared regression folder (data/prepared: train/val/test with the target
standardised, its training mean and std in meta.json), fit on the training and validation
rows, with every choice made by 5-fold cross-validation on them:

- the training mean (the lab's trivial baseline; in CV each fold is predicted by the mean
  of the other folds' rows),
- `RidgeCV`, alpha on a log grid,
- `MLPRegressor` shaped and trained like the lab's MLP (hidden units, activation, Adam's
  learning rate, batch size, epochs from params.yaml), its L2 strength chosen by
  `GridSearchCV` over the lab's own all-layer rates.

Every RMSE is in the target's units: predictions and targets are un-standardised first.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from pipeline.config.schema import LabConfig
from pipeline.core.contracts import PreparedMeta, read_meta
from pipeline.core.errors import DataError, LabError
from pipeline.datasets.prepared import read_split

FOLDS = 5
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))
SCORING = "neg_mean_squared_error"


@dataclass(frozen=True)
class MlpSettings:
    hidden_units: tuple[int, ...]
    activation: str
    learning_rate: float
    batch_size: int
    epochs: int
    rates: tuple[float, ...]  # Keras L2 rates, one for every kernel

    @classmethod
    def of(cls, config: LabConfig) -> MlpSettings:
        """The lab's MLP and training settings; the rates of its one-rate sweep entries."""
        if config.model.builder != "mlp":
            raise LabError(f"model.builder is {config.model.builder!r}: the reference mirrors"
                           " the built-in MLP (model.builder: mlp)")  # fmt: skip
        rates = sorted({entry.l2 for entry in config.sweep.values() if isinstance(entry.l2, float)
                        and not entry.weight_decay and not entry.uses_pool})  # fmt: skip
        if not rates:
            raise LabError("the sweep has no entry with one L2 rate for every layer to search")
        return cls(tuple(config.model.hidden_units), config.model.activation or "tanh",
                   config.train.learning_rate, config.train.batch_size, config.train.epochs,
                   tuple(rates))  # fmt: skip

    def mlp_alpha(self, rate: float) -> float:
        """scikit-learn's alpha for a Keras L2 rate. Per batch of b rows scikit-learn
        minimises mean(e²)/2 + alpha Σw² / (2b), Keras mean(e²) + rate Σw² (both over every
        kernel, no bias): the same objective when alpha = rate · b."""
        return rate * self.batch_size


def _fit_rows(prepared: Path) -> tuple[PreparedMeta, np.ndarray, np.ndarray, np.ndarray,
                                       np.ndarray]:  # fmt: skip
    """meta.json, then the training and validation rows together, then the test rows."""
    meta = read_meta(prepared)
    if not meta.is_regression:
        raise DataError(f"{prepared}: a {meta.task} task; the reference is for regression")
    train, val, test = (read_split(prepared, name) for name in ("train", "val", "test"))
    flat = [split.features.reshape(len(split.features), -1) for split in (train, val, test)]
    # float64 from here: the figures should not carry float32 rounding of the sums.
    x_fit = np.concatenate(flat[:2]).astype(np.float64)
    y_fit = np.concatenate([train.labels, val.labels]).astype(np.float64)
    return meta, x_fit, y_fit, flat[2].astype(np.float64), test.labels.astype(np.float64)


def _rmse(meta: PreparedMeta, predicted: np.ndarray, standardised: np.ndarray) -> float:
    errors = meta.in_target_units(predicted) - meta.in_target_units(standardised)
    return float(np.sqrt(np.mean(errors**2)))


def reference_figures(
    prepared: Path, mlp: MlpSettings, *, seed: int = 42, name: str | None = None
) -> dict:
    """Each model's test RMSE and 5-fold CV RMSE (the root of the folds' mean MSE), in the
    target's units, what each CV chose, and the seconds each took; `name` labels the table
    (default: meta.json's source)."""
    meta, x_fit, y_fit, x_test, y_test = _fit_rows(prepared)
    folds = KFold(FOLDS, shuffle=True, random_state=seed)

    def figures(model: str, chosen: str, predicted: np.ndarray, neg_mse: float, started: float):
        return {"model": model, "chosen": chosen, "test_rmse": _rmse(meta, predicted, y_test),
                "cv_rmse": float(np.sqrt(-neg_mse) * meta.target_std),
                "seconds": time.perf_counter() - started}  # fmt: skip

    started = time.perf_counter()
    mean_scores = cross_val_score(DummyRegressor(), x_fit, y_fit, cv=folds, scoring=SCORING)
    # The lab's baseline predicts the training rows' mean: standardised, exactly 0.
    baseline = figures("training mean", "", np.zeros_like(y_test), mean_scores.mean(), started)

    started = time.perf_counter()
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, cv=folds, scoring=SCORING).fit(x_fit, y_fit)
    ridge_figures = figures("RidgeCV", f"alpha {ridge.alpha_:g}", ridge.predict(x_test),
                            ridge.best_score_, started)  # fmt: skip

    started = time.perf_counter()
    # One BLAS thread: on 2 busy cores OpenBLAS's 2 threads made one 256-256 fit of 265 rows
    # 16x slower (163 s against 10 s, load 8); one thread also sums in one order.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # Reaching max_iter is the point (a fixed budget of epochs), not a failure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = _mlp_search(mlp, folds, seed).fit(x_fit, y_fit)
    rate = mlp.rates[search.best_index_]  # the grid keeps the rates' order
    mlp_figures = figures("MLPRegressor", f"rate {rate:g} (alpha {mlp.mlp_alpha(rate):g})",
                          search.predict(x_test), search.best_score_, started)  # fmt: skip
    # How much the rate matters here: the CV figure of every rate searched.
    scores = search.cv_results_["mean_test_score"]
    mlp_figures["cv_rmse_by_rate"] = {f"{r:g}": float(np.sqrt(-score) * meta.target_std)
                                      for r, score in zip(mlp.rates, scores, strict=True)}

    return {"table": name or meta.source, "prepared": str(prepared), "seed": seed,
            "folds": FOLDS, "rows": {"fit": len(y_fit), "test": len(y_test)},
            "target_mean": meta.target_mean, "target_std": meta.target_std,
            "mlp": asdict(mlp), "models": [baseline, ridge_figures, mlp_figures]}  # fmt: skip


def _mlp_search(mlp: MlpSettings, folds: KFold, seed: int) -> GridSearchCV:
    network = MLPRegressor(
        hidden_layer_sizes=mlp.hidden_units, activation=mlp.activation, solver="adam",
        learning_rate_init=mlp.learning_rate, batch_size=mlp.batch_size, max_iter=mlp.epochs,
        # Exactly `epochs` passes like the lab: no stopping on a plateau of the training loss.
        n_iter_no_change=mlp.epochs, random_state=seed,
    )  # fmt: skip
    alphas = {"alpha": [mlp.mlp_alpha(rate) for rate in mlp.rates]}
    return GridSearchCV(network, alphas, cv=folds, scoring=SCORING)


def markdown(runs: list[dict]) -> str:
    """One table over the runs, a row per table and model; then, per run, the MLP's CV RMSE
    at each rate it searched."""
    lines = ["| table | rows fit / test | model | chosen by 5-fold CV | CV RMSE | test RMSE | "
             "seconds |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for run in runs:
        rows = f"{run['rows']['fit']} / {run['rows']['test']}"
        for model in run["models"]:
            lines.append(f"| {run['table']} | {rows} | {model['model']} | "
                         f"{model['chosen']} | {model['cv_rmse']:.4g} | {model['test_rmse']:.4g}"
                         f" | {model['seconds']:.1f} |")  # fmt: skip
    for run in runs:
        by_rate = run["models"][-1]["cv_rmse_by_rate"]
        lines.append(f"\n{run['table']}, MLPRegressor's CV RMSE by Keras rate: "
                     + ", ".join(f"{rate}: {rmse:.4g}" for rate, rmse in by_rate.items()))
    return "\n".join(lines)

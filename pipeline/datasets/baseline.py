"""The trivial baseline: the error of a predictor that ignores the features, beside every error
the report shows, so a model that learned nothing is seen as such.

A task plugs in its trivial predictor (`TRIVIAL`): how it is fitted on the training targets
and how its one prediction is scored on a split, by the task's headline figure and by its
choosing figure (the mean per-row loss the folds average). Classification predicts the
training rows' majority class, as the model was trained on them (label noise included), ties
broken by the lowest class index; its error is the share of rows of another class.
Regression predicts the training rows' mean target (in the target's units: the caller passes
targets in units); its RMSE is the root of the mean squared deviation from it, its MSE the
square. Every figure comes from `trivial_baseline`, which `evaluate` calls once per training
set and per fold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from pipeline.core.task import (
    CLASSIFICATION,
    CLASSIFICATION_TASK,
    REGRESSION,
    REGRESSION_TASK,
    task_named,
)


def majority_class(labels: np.ndarray) -> int:
    """The most frequent class; on a tie the lowest class index (np.argmax takes the first)."""
    if len(labels) == 0:
        raise ValueError("no training rows to take the majority class of")
    return int(np.argmax(np.bincount(np.asarray(labels, dtype=np.int64))))


def share_wrong(prediction: int, labels: np.ndarray) -> float:
    """Classification error of predicting `prediction` for every row."""
    return float(np.mean(np.asarray(labels) != prediction))


def training_mean(targets: np.ndarray) -> float:
    if len(targets) == 0:
        raise ValueError("no training rows to take the mean target of")
    return float(np.mean(np.asarray(targets, dtype=np.float64)))


def squared_error(prediction: float, targets: np.ndarray) -> float:
    """Mean squared error of predicting `prediction` for every row."""
    return float(np.mean((np.asarray(targets, dtype=np.float64) - prediction) ** 2))


def root_squared_error(prediction: float, targets: np.ndarray) -> float:
    return float(np.sqrt(squared_error(prediction, targets)))


@dataclass(frozen=True)
class TrivialPredictor:
    """A task's predictor that ignores the features: what the pages call it, how it is
    fitted on the training targets, and its one prediction's headline figure on a split
    (`error`) and choosing figure (`loss`, the mean per-row loss)."""

    name: str
    fit: Callable[[np.ndarray], int | float]
    error: Callable[[int | float, np.ndarray], float]
    loss: Callable[[int | float, np.ndarray], float]


TRIVIAL = {
    CLASSIFICATION: TrivialPredictor(
        CLASSIFICATION_TASK.trivial, majority_class, share_wrong, share_wrong
    ),
    REGRESSION: TrivialPredictor(
        REGRESSION_TASK.trivial, training_mean, root_squared_error, squared_error
    ),
}


def _predictor(task: str) -> TrivialPredictor:
    if task not in TRIVIAL:
        raise ValueError(f"no trivial predictor for task {task!r}; known: {sorted(TRIVIAL)}")
    return TRIVIAL[task]


def trivial_baseline(
    task: str, train_targets: np.ndarray, splits: Mapping[str, np.ndarray]
) -> dict[str, int | float]:
    """The task's trivial predictor fitted on `train_targets`: its name (`predictor`), its
    `prediction` and its headline figure on each split's targets (`splits`: split name ->
    targets; `<split>_error`, `<split>_rmse`), unrounded."""
    predictor = _predictor(task)
    prediction = predictor.fit(train_targets)
    figure = task_named(task).figure
    errors = {f"{name}_{figure}": predictor.error(prediction, y) for name, y in splits.items()}
    return {"predictor": predictor.name, "prediction": prediction, **errors}


def fold_baseline(task: str, folds: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """The trivial predictor fitted on each fold's training targets and scored on its held-out
    targets (`folds`: (training, held-out) targets per fold) by the choosing figure
    (classification: `error`, regression: `mse`), and that figure's mean over folds
    (`cv_error_mean`, `cv_mse_mean`), as the entries' is."""
    predictor, name = _predictor(task), task_named(task).choice
    found = []
    for fold, (train, held_out) in enumerate(folds):
        prediction = predictor.fit(train)
        found.append({"fold": fold, "prediction": prediction,
                      name: predictor.loss(prediction, held_out)})  # fmt: skip
    mean = float(np.mean([f[name] for f in found]))
    return {"folds": found, task_named(task).cv_mean: mean}

"""The trivial baseline: the error of a predictor that ignores the features, beside every error
the report shows, so a model that learned nothing is seen as such.

A task plugs in its trivial predictor (`TRIVIAL`): how it is fitted on the training targets
and how its one prediction is scored on a split. Classification predicts the training rows'
majority class, as the model was trained on them (label noise included), ties broken by the
lowest class index; its error is the share of rows of another class. Every figure comes
from `trivial_baseline`, which `evaluate` calls once per training set and per fold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

CLASSIFICATION = "classification"


def majority_class(labels: np.ndarray) -> int:
    """The most frequent class; on a tie the lowest class index (np.argmax takes the first)."""
    if len(labels) == 0:
        raise ValueError("no training rows to take the majority class of")
    return int(np.argmax(np.bincount(np.asarray(labels, dtype=np.int64))))


def share_wrong(prediction: int, labels: np.ndarray) -> float:
    """Classification error of predicting `prediction` for every row."""
    return float(np.mean(np.asarray(labels) != prediction))


@dataclass(frozen=True)
class TrivialPredictor:
    """A task's predictor that ignores the features: what the pages call it, how it is
    fitted on the training targets, and the error of its one prediction on a split."""

    name: str
    fit: Callable[[np.ndarray], int | float]
    error: Callable[[int | float, np.ndarray], float]


TRIVIAL = {CLASSIFICATION: TrivialPredictor("majority class", majority_class, share_wrong)}


def trivial_baseline(
    task: str, train_targets: np.ndarray, splits: Mapping[str, np.ndarray]
) -> dict[str, int | float]:
    """The task's trivial predictor fitted on `train_targets`: its name (`predictor`), its
    `prediction` and its `<split>_error` on each split's targets (`splits`: split name ->
    targets), unrounded."""
    if task not in TRIVIAL:
        raise ValueError(f"no trivial predictor for task {task!r}; known: {sorted(TRIVIAL)}")
    predictor = TRIVIAL[task]
    prediction = predictor.fit(train_targets)
    errors = {f"{name}_error": predictor.error(prediction, y) for name, y in splits.items()}
    return {"predictor": predictor.name, "prediction": prediction, **errors}

"""The fine-tuning demonstration's tasks, cut from scikit-learn's bundled digits (no network).

Source: every image of digits 0-4. Similar target: digits 5-9, the same pixels. Dissimilar
target: the same digits 5-9 with their 64 pixels under one fixed, seeded permutation, so the
inputs carry the same information but none of the source's spatial features fit (the control
of Li et al. 2020). Pixels are divided by 16, their fixed range, so the source model and the
lab's own scaling of the target see values of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits

PIXEL_RANGE = 16.0  # digits' pixels are whole numbers 0..16
SOURCE_DIGITS = (0, 1, 2, 3, 4)
TARGET_DIGITS = (5, 6, 7, 8, 9)
PERMUTATION_STREAM = 7  # a seed stream of its own, apart from the source model's


@dataclass(frozen=True)
class Task:
    name: str
    features: np.ndarray  # rows x 64, float32 in [0, 1]
    labels: np.ndarray  # the digit itself (int64)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.data / PIXEL_RANGE).astype(np.float32), digits.target.astype(np.int64)


def _of(digits: tuple[int, ...]) -> Task:
    x, y = _digits()
    keep = np.isin(y, digits)
    return Task("", x[keep], y[keep])


def source_task() -> Task:
    task = _of(SOURCE_DIGITS)
    return Task("source", task.features, task.labels)


def pixel_permutation(seed: int) -> np.ndarray:
    """The one fixed permutation of the 64 pixels the dissimilar target uses."""
    return np.random.default_rng([seed, PERMUTATION_STREAM]).permutation(64)


def target_tasks(seed: int) -> tuple[Task, Task]:
    """(similar, dissimilar): digits 5-9 as they are, and under `pixel_permutation(seed)`."""
    task = _of(TARGET_DIGITS)
    permuted = task.features[:, pixel_permutation(seed)]
    return Task("similar", task.features, task.labels), Task("dissimilar", permuted, task.labels)


def save_npz(task: Task, path) -> None:
    """The task as the lab reads `data.source: npz` (x: examples x features, y: labels)."""
    np.savez(path, x=task.features, y=task.labels)

"""Repeats over seeds and folds: summarise models that differ only in their seed or fold."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

# The significance level of every test and the coverage of every interval (1 - ALPHA).
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 10_000


def seed_summary(per_seed: list[dict[str, float]], names: Iterable[str]) -> dict[str, float]:
    """Mean and sample standard deviation of each spread metric (`names`: the task's,
    core/task.py `spread_metrics`) over models differing only in seed, plus `n_seeds`."""
    summary: dict[str, float] = {"n_seeds": len(per_seed)}
    for name in names:
        values = np.array([m[name] for m in per_seed], dtype=np.float64)
        summary[f"{name}_mean"] = float(values.mean())
        summary[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return summary


def mean_and_se(errors: Sequence[float]) -> tuple[float, float]:
    """Mean of per-fold (or per-seed) errors and its standard error, std(ddof=1)/sqrt(k),
    as ESL §7.10 uses for the one-standard-error rule. One value: SE 0."""
    values = np.asarray(errors, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), 0.0
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def bootstrap_rows(n: int, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """Row indices of `resamples` bootstrap samples of `n` rows, shape (resamples, n). One
    draw shared by every comparison keeps them paired and reproducible."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def rmse_interval(squared_errors: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile bootstrap interval of the RMSE of rows with these squared errors
    (BOOTSTRAP_RESAMPLES resamples of the rows, seeded by `seed`)."""
    squared_errors = np.asarray(squared_errors, dtype=np.float64)
    rows = bootstrap_rows(len(squared_errors), seed)
    roots = np.sqrt(squared_errors[rows].mean(axis=1))
    low, high = np.quantile(roots, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)

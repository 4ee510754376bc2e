"""Repeats over seeds and folds: summarise models that differ only in their seed or fold."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pipeline.core.contracts import SPREAD_METRICS


def seed_summary(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Mean and sample standard deviation of each spread metric over models differing only
    in seed, plus `n_seeds`."""
    summary: dict[str, float] = {"n_seeds": len(per_seed)}
    for name in SPREAD_METRICS:
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

"""Would more data do better: test error vs training-set size, rate 0 against the best rate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.choosing.points import ALL, Point


def size_curves(points: Sequence[Point]) -> pd.DataFrame:
    """Per label-noise share and training-set size: rate 0's errors and those of the rate with
    the lowest validation error at that size. Columns noise, train_size, series, l2_rate,
    entry, val_error, test_error, test_error_std: the plots' names for both tasks, holding
    the task's headline figure (Point.val and Point.test: a regression's RMSE)."""
    sized = [p for p in points if p.rows is not None and p.layer == ALL]
    rows = []
    for noise in sorted({p.noise for p in sized}):
        for n in sorted({p.rows for p in sized if p.noise == noise}):
            here = [p for p in sized if p.noise == noise and p.rows == n]
            zero = next((p for p in here if p.rate == 0), None)
            best = min(here, key=lambda p: p.val)  # ranked order breaks ties
            for series, p in (("rate 0", zero), ("best rate", best)):
                if p is not None:
                    rows.append(
                        {
                            "noise": noise,
                            "train_size": n,
                            "series": series,
                            "l2_rate": p.rate,
                            "entry": p.entry,
                            "val_error": p.val,
                            "test_error": p.test,
                            "test_error_std": p.test_std,
                        }
                    )
    columns = ["noise", "train_size", "series", "l2_rate", "entry", "val_error", "test_error"]
    return pd.DataFrame(rows, columns=[*columns, "test_error_std"])


def equivalent_samples(curve: pd.DataFrame, n: int, error: float) -> float | None:
    """The training-set size at which the rate-0 curve reaches `error`, interpolated linearly
    in log(size) between the sizes around the crossing, searching from `n` up; None when it
    does not get there within the curve."""
    sizes = curve["train_size"].to_numpy(dtype=float)
    errors = curve["test_error"].to_numpy(dtype=float)
    for i in range(len(sizes)):
        if sizes[i] < n:
            continue
        if errors[i] <= error:
            if i == 0 or sizes[i - 1] < n or errors[i - 1] <= error:
                return float(sizes[i])
            share = (errors[i - 1] - error) / (errors[i - 1] - errors[i])
            logs = np.log(sizes[i - 1]) + share * (np.log(sizes[i]) - np.log(sizes[i - 1]))
            return float(np.exp(logs))
    return None


@dataclass(frozen=True)
class DataEquivalent:
    """At one training-set size where a non-zero rate is best on validation: what rate 0
    needs to match its test error. `samples`: the size at which rate 0 gets there, None when
    it does not reach it (`no_gain`: L2 is not lower than rate 0 at the same size)."""

    noise: float
    size: int
    rate: float
    test_value: float
    no_gain: bool
    samples: float | None
    largest: int  # the largest size rate 0 was trained on
    largest_value: float  # rate 0's test figure there


def data_equivalents(curves: pd.DataFrame) -> list[DataEquivalent]:
    """One for every size where a non-zero rate is best, by noise then size."""
    found = []
    for noise, group in curves.groupby("noise", sort=True):
        zero = group[group["series"] == "rate 0"].sort_values("train_size")
        best = group[group["series"] == "best rate"].sort_values("train_size")
        for row in best.itertuples():
            if row.l2_rate == 0 or zero.empty:
                continue
            at = zero[zero["train_size"] == row.train_size]
            no_gain = not at.empty and row.test_error >= at["test_error"].iloc[0]
            samples = None if no_gain else equivalent_samples(zero, row.train_size, row.test_error)
            found.append(
                DataEquivalent(
                    noise=float(noise),
                    size=int(row.train_size),
                    rate=float(row.l2_rate),
                    test_value=float(row.test_error),
                    no_gain=no_gain,
                    samples=samples,
                    largest=int(zero["train_size"].max()),
                    largest_value=float(zero["test_error"].iloc[-1]),
                )
            )
    return found

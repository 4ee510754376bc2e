"""A regression's uncertainty beside its figures: the decision's standard error of each
candidate's validation MSE in the table, and the standard error of RMSE on the plots.

The decision ranks on MSE, whose standard error comes from the per-row squared errors
(choosing/decision.py); a page in the target's units shows RMSE = sqrt(MSE), whose standard
error follows by the delta method: SE(RMSE) = SE(MSE) / (2 RMSE).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.choosing import Decision
from pipeline.core.task import Task


def rmse_and_se(mse, mse_se):
    """RMSE = sqrt(MSE) and its standard error by the delta method, SE(MSE) / (2 RMSE)."""
    rmse = np.sqrt(np.asarray(mse, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return rmse, np.asarray(mse_se, dtype=float) / (2 * rmse)


def _candidates(decision: Decision):
    return (decision.chosen, *(c.other for c in decision.comparisons))


def with_choosing_se(
    sweep: pd.DataFrame, decision: Decision, task: Task
) -> pd.DataFrame:
    """A regression's table with the decision's SE of each candidate's validation MSE
    (`val_mse_se`) beside its MSE: the figure and uncertainty the decision ranks by."""
    se = {c.name: c.se for c in _candidates(decision)}
    column = f"{task.choosing_figure}_se"
    at = list(sweep.columns).index(task.choosing_figure) + 1
    return sweep.assign(**{column: sweep["entry"].map(se)})[
        [*sweep.columns[:at], column, *sweep.columns[at:]]
    ]


def val_rmse_se(decision: Decision | None) -> dict[str, float]:
    """entry -> the SE of its validation RMSE, from the decision's SE of its MSE by the delta
    method (rmse_and_se); candidates only, and without folds (with folds the plot's `cv`
    series carries the folds' own)."""
    if decision is None or decision.folds:
        return {}
    return {c.name: float(rmse_and_se(c.value, c.se)[1]) for c in _candidates(decision)}

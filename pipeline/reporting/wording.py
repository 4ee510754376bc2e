"""What the pages call a task's figures, beside the names core/task.py gives the files.

Classification's words are those the pages have always used ("error", "majority class"), so
its reports stay as they were; regression's headline figure is RMSE in the target's units and
its decision is made on MSE (per-row squared errors), which the pages say in those words.
"""

from __future__ import annotations

from pipeline.core.task import Task


def figure_word(task: Task) -> str:
    """The headline figure in a sentence: "error" or "RMSE"."""
    return "RMSE" if task.is_regression else "error"


def choice_word(task: Task) -> str:
    """The figure the decision ranks on, in a sentence: "error" or "MSE"."""
    return "MSE" if task.is_regression else "error"


def baseline_series(task: Task) -> str:
    """The trivial baseline's name on plots and in the table (evaluate's `baseline`)."""
    return "training mean" if task.is_regression else "majority class"


def figure_axis(task: Task, target: str | None = None) -> str:
    """A y axis of the headline figure: "error (1 - accuracy)", or "RMSE (<target>'s units)"."""
    if not task.is_regression:
        return task.figure_label
    return f"RMSE ({target}, target units)" if target else task.figure_label

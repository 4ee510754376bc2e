"""A plot axis for a task's headline figure: its label (core/task.py holds each task's words),
with a regression's target named when params.yaml names it."""

from __future__ import annotations

from pipeline.core.task import Task


def figure_axis(task: Task, target: str | None = None) -> str:
    """A y axis of the headline figure: "error (1 - accuracy)", or "RMSE (<target>'s units)"."""
    if not task.is_regression:
        return task.figure_label
    return f"RMSE ({target}, target units)" if target else task.figure_label

"""Progress of a sweep in about a dozen compact lines, however many models it trains."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from pipeline.core.task import Task

log = logging.getLogger(__name__)

# Up to this many models, each gets its own figures on the line; beyond, the best and worst.
EACH_MODEL_UP_TO = 4


# How a progress line names each task's headline figure (core/task.py).
SHORT_NAMES = {"error": "err", "rmse": "rmse"}


def latest_figures(
    per_model: Mapping[str, Mapping[str, float]], task: Task
) -> str:
    """Each model's train/val figure (error, RMSE), or beyond EACH_MODEL_UP_TO models the
    best and worst."""
    if not per_model:
        return "every model diverged"
    short, train_key, val_key = SHORT_NAMES[task.figure], task.train_figure, task.val_figure
    if len(per_model) <= EACH_MODEL_UP_TO:
        return "  ".join(
            f"{name} train/val {short} {m[train_key]:.3f}/{m[val_key]:.3f}"
            for name, m in per_model.items()
        )
    by_val = sorted(per_model, key=lambda name: per_model[name][val_key])
    best, worst = by_val[0], by_val[-1]
    train = [m[train_key] for m in per_model.values()]
    return (
        f"{len(per_model)} models  val {short} best {per_model[best][val_key]:.3f} ({best})"
        f", worst {per_model[worst][val_key]:.3f} ({worst})"
        f"  train {short} {min(train):.3f}-{max(train):.3f}"
    )


class GroupedProgress:
    """An epoch sink for towers trained in groups, in any order and in parallel: one line per
    tenth of all the sweep's model-epochs (and at least every `min_interval_s`), with the
    latest figures of every model, however many groups or workers there are."""

    def __init__(
        self,
        epochs: int,
        n_models: int,
        min_interval_s: float = 30.0,
        *,
        task: Task,
    ):
        self.total = epochs * n_models
        self.task = task
        self.min_interval_s = min_interval_s
        self.reached: dict[str, int] = {}  # model -> its latest epoch
        self.latest: dict[str, Mapping[str, float]] = {}
        self.started = time.perf_counter()
        self.last = self.started
        self.tenths = 0

    def __call__(self, epoch: int, per_model: Mapping[str, Mapping[str, float]]) -> None:
        for name, metrics in per_model.items():
            self.reached[name] = epoch
            self.latest[name] = metrics
        done = sum(self.reached.values())
        tenths = done * 10 // self.total
        now = time.perf_counter()
        if tenths <= self.tenths and now - self.last < self.min_interval_s:
            return
        self.tenths = max(tenths, self.tenths)
        self.last = now
        log.info(
            "epoch progress %3d%% (%d/%d model-epochs)  %5.1fs  %s",
            100 * done // self.total,
            done,
            self.total,
            now - self.started,
            latest_figures(self.latest, self.task),
        )

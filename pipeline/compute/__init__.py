"""How a sweep is computed: cut into groups of towers, trained by an executor.

`groups`: the picklable group descriptions (a group = towers sharing a training set, at
most `compute.group_size`) and their numpy results; `planning`: a sweep's towers cut into
groups. `work`: training one group, wherever it
runs. `executors`: in this process (the default), `local` worker processes (`worker` is
their entry point, over `multiprocessing.connection`), or `ray_tasks` on a Ray cluster when
RAY_ADDRESS is set. Every executor gives every tower the same bits (docs/scaling.md).
"""

from pipeline.compute.executors import executor_label, run_group_into, run_groups
from pipeline.compute.groups import (
    REFIT,
    GroupFailure,
    GroupOutcomes,
    GroupResult,
    GroupTask,
    ModelTask,
    Recipe,
    cut_groups,
)
from pipeline.compute.planning import refit_group, sweep_groups

__all__ = [
    "REFIT",
    "GroupFailure",
    "GroupOutcomes",
    "GroupResult",
    "GroupTask",
    "ModelTask",
    "Recipe",
    "cut_groups",
    "executor_label",
    "refit_group",
    "run_group_into",
    "run_groups",
    "sweep_groups",
]

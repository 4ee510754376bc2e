"""The sections of `params.yaml` that say how the lab decides, runs and publishes, never how
a model trains: `choose:` (the rule, and folds: a fold's model carries their number in its
own key), `compute:` (groups, workers) and `registry:` (where the chosen model goes). None of
them is in a model's key as such (model_store/key.py NOT_IN_KEY)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from pipeline.config.section import SECTION_CONFIG


class ChooseConfig(BaseModel):
    """How the report chooses among the entries (pipeline/choosing/decision.py)."""

    model_config = SECTION_CONFIG

    # min: the lowest validation error; one_se: the most regularized entry within one
    # standard error of the lowest (ESL §7.10), falling back to min when the entries within
    # one SE are not ordered by rate.
    rule: Literal["min", "one_se"] = "min"
    # null: choose on data's validation split. k >= 2: pool the training and validation rows,
    # cut them into k stratified folds and train every entry and seed k times more, each time
    # on k - 1 folds (label noise on those rows only) scored on the held-out fold.
    folds: int | None = None

    @field_validator("folds")
    @classmethod
    def _at_least_two_folds(cls, value: int | None) -> int | None:
        if value is not None and value < 2:
            raise ValueError(
                "must be null (choose on the validation split) or a whole number >= 2 (k-fold"
                " cross-validation, e.g. 5)"
            )
        return value

    @property
    def fold_ids(self) -> tuple[int, ...]:
        return tuple(range(self.folds or 0))


# Towers per graph by default: graph building and tracing grow with the towers of a graph,
# and a group is also the unit that a worker or a Ray task trains.
DEFAULT_GROUP_SIZE = 16


class ComputeConfig(BaseModel):
    """How the sweep is computed, never what it computes: every tower's weights are the same
    bits whatever these say (docs/scaling.md), so `dvc.yaml` leaves them out of `params:`."""

    model_config = SECTION_CONFIG

    # At most this many towers share one graph (towers on different training sets never do).
    group_size: Annotated[int, Field(ge=1)] = DEFAULT_GROUP_SIZE
    # 0: the groups train one after the other in the stage's process; N: in N local worker
    # processes. With RAY_ADDRESS set, one Ray task per group instead.
    workers: Annotated[int, Field(ge=0, le=256)] = 0
    # TensorFlow's intra-op threads per worker process or Ray task (inter-op: 2).
    threads_per_worker: Annotated[int, Field(ge=1, le=256)] = 1


class RegistryConfig(BaseModel):
    """Where `register` puts the chosen model: `models:/<name>@<alias>` (pipeline/register.py)."""

    model_config = SECTION_CONFIG

    # Also in URIs and the registry's search filters: MLflow refuses `/` and `:`, and `@`,
    # quotes and spaces would need escaping there. The alias: MLflow's own rule.
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$")] = "l2-lab"
    alias: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")] = "chosen"

    @field_validator("alias")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() == "latest" or re.fullmatch(r"[vV]\d+", value):  # models:/<name>@v2
            raise ValueError("is reserved by MLflow (latest, v<number>); choose another name")
        return value

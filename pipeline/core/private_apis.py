"""Every use of a library's private API in pipeline/, in one place.

These are why pyproject.toml bounds Keras and MLflow to the minor versions the tests ran
(requirements.lock). Before widening a bound, check each use below against the new
release; tests/test_private_apis.py fails when code gains a private use not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrivateUse:
    library: str
    name: str  # the private module, method or schema element, as the code spells it
    file: str  # where it is used, from the repository root
    why: str  # what it does for the lab, and why no public API does it


PRIVATE_USES = (
    PrivateUse(
        "keras",
        "keras.src.models.functional",
        "pipeline/modeling/builders.py",
        "Functional tells a cloneable functional model from a subclassed one (which cannot "
        "take L2 by cloning); Keras exports no public name for the class",
    ),
    PrivateUse(
        "keras",
        "keras.src.utils.naming",
        "pipeline/modeling/builders.py",
        "reset_uids restarts the layer-name counters, so a builder's unnamed layers get the "
        "same names in every tower as in a process of their own",
    ),
    PrivateUse(
        "keras",
        "_backend_update_step",
        "pipeline/modeling/optimizer.py",
        "overridden: Adam's update made once on one flat vector for every tower's weights",
    ),
    PrivateUse(
        "keras",
        "_apply_weight_decay",
        "pipeline/modeling/optimizer.py",
        "overridden: each tower's own AdamW decay (Keras gives an optimizer one decay)",
    ),
    PrivateUse(
        "keras",
        "_var_key",
        "pipeline/modeling/optimizer.py",
        "keys each kernel's decay the way Keras keys its optimizer slots",
    ),
    PrivateUse(
        "keras",
        "super(keras.optimizers.Adam, self).build",
        "pipeline/modeling/optimizer.py",
        "the base optimizer's build (step counter) without Adam's per-weight slots",
    ),
    PrivateUse(
        "mlflow",
        "mlflow.utils.mlflow_tags",
        "pipeline/tracking/runs.py",
        "MLFLOW_PARENT_RUN_ID, the documented `mlflow.parentRunId` tag, from a module outside "
        "MLflow's public API",
    ),
    PrivateUse(
        "mlflow",
        "sqlite3.connect",
        "pipeline/tracking/store.py",
        "SQL on MLflow's schema (experiments.artifact_location, runs.artifact_uri, "
        "logged_models.artifact_location): re-anchors a moved project's artifact locations, "
        "which no MLflow API changes",
    ),
)

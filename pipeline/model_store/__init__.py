"""Trained models kept by the key of everything their bytes depend on, so a sweep trains
only the models it has not trained before.

`key`: a model's key, failing closed (the whole configuration minus an allow-list, the
prepared data, builder files, training code and numeric environment by content). `store`:
the models by key, atomic and checked on read. `lookup`: which of a stage's models the
store holds, `dvc repro -f` / L2LAB_RETRAIN, and why the others train.
"""

from pipeline.model_store.key import Fingerprint, ingredients
from pipeline.model_store.lookup import Lookup, forced_retrain, look_up, why_retrained
from pipeline.model_store.store import ModelStore, StoredModel, max_bytes, store_location

__all__ = [
    "Fingerprint",
    "Lookup",
    "ModelStore",
    "StoredModel",
    "forced_retrain",
    "ingredients",
    "look_up",
    "max_bytes",
    "store_location",
    "why_retrained",
]

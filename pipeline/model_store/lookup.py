"""Which of a stage's models the store already holds, and why the others train.

`dvc repro -f` (and a workspace `dvc exp run -f`) or L2LAB_RETRAIN=1 trains every model: the
store is then written, never read.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from pipeline.model_store.key import CONTEXT, settings_digest
from pipeline.model_store.store import RECORD, ModelStore, StoredModel

log = logging.getLogger(__name__)

RETRAIN_ENV = "L2LAB_RETRAIN"


def _is_forced_dvc(command: Sequence[str]) -> bool:
    words = [os.path.basename(word) for word in command]
    if "dvc" not in words or not {"repro", "run"} & set(words):
        return False
    flags = [w for w in command if w.startswith("-") and not w.startswith("--")]
    return "--force" in command or any("f" in flag[1:] for flag in flags)


def forced_retrain() -> str | None:
    """Why every model trains regardless of the store, or None. DVC does not tell a stage
    that it was forced, so its command line is read from the stage's ancestors."""
    if os.environ.get(RETRAIN_ENV, "").strip().lower() in ("1", "true", "yes"):
        return f"{RETRAIN_ENV} is set"
    try:
        for process in psutil.Process().parents():
            command = process.cmdline()
            if _is_forced_dvc(command):
                words = [os.path.basename(word) for word in command]
                return f"`{' '.join(words[words.index('dvc') :])}` forces it"
    except psutil.Error:
        pass
    return None


@dataclass
class Lookup:
    keys: dict[str, str]  # model name -> key
    ingredients: dict[str, dict]  # model name -> what its key hashes
    found: dict[str, StoredModel] = field(default_factory=dict)  # model name -> stored

    def missing(self) -> list[str]:
        return [name for name in self.keys if name not in self.found]


def look_up(store: ModelStore, ingredients: Mapping[str, dict], forced: str | None) -> Lookup:
    from pipeline.model_store.key import digest_of

    lookup = Lookup({n: digest_of(i) for n, i in ingredients.items()}, dict(ingredients))
    if forced is None:
        for name, key in lookup.keys.items():
            stored = store.get(key)
            if stored is not None:
                lookup.found[name] = stored
    return lookup


def why_retrained(store: ModelStore, lookup: Lookup) -> list[str]:
    """For models whose settings the store holds under another key: what changed since,
    one reason per line (a new TensorFlow, an edited builder, other data, ...)."""
    missing = {settings_digest(lookup.ingredients[name]): name for name in lookup.missing()}
    if not missing:
        return []
    reasons: dict[str, int] = {}
    for folder in store.entries():
        try:
            before = json.loads((folder / RECORD).read_text())["ingredients"]
        except (OSError, ValueError, KeyError):
            continue
        name = missing.pop(settings_digest(before), None)
        if name is not None:
            reason = changed(before, lookup.ingredients[name])
            reasons[reason] = reasons.get(reason, 0) + 1
    return [f"{n} model(s) trained before retrain: {reason}" for reason, n in reasons.items()]


def changed(before: dict, now: dict) -> str:
    parts = []
    for part in CONTEXT:
        if before.get(part) == now.get(part):
            continue
        if part == "environment":
            parts += [
                f"{name} {before[part].get(name)} -> {value}"
                for name, value in now[part].items()
                if before[part].get(name) != value
            ]
        else:
            parts.append({"code": "the lab's training code changed",
                          "builder_files": "the builder's files changed",
                          "data": "the prepared data changed",
                          "format": "the store's format changed"}[part])  # fmt: skip
    return "; ".join(parts) or "unknown"

"""A trained model's key: a digest of everything its bytes depend on, failing closed.

A model trained as a tower of a group is bit-identical to the same model trained alone
(modeling/towers.py), so its weights are a pure function of its inputs. The key hashes the
whole resolved configuration *minus* an explicit allow-list of settings that cannot change a
model's bytes, so a setting added to the schema later is in the key without anyone
remembering to add it; plus the prepared data, the user's builder files, the code on the
training path and the numeric environment, all by content. What is not in the key and could
change a bit is a bug (tests/test_model_key.py changes each input in turn).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.builder_ref import BuilderRef
from pipeline.config.schema import LabConfig
from pipeline.core.contracts import files_digest, folder_digest

# Bumped when what the store keeps for a key changes.
STORE_FORMAT = 1

# Settings left out of every key, each proven not to change a model's bytes:
NOT_IN_KEY = (
    # How groups are cut and where they run: same bits (tests/test_compute.py, test_ray.py).
    "compute",
    # Where runs are recorded, and where the chosen model is registered.
    "base.experiment",
    "registry",
    # Which seeds and entries exist; the model's own seed and entry are in its key.
    "base.repeat_seeds",
    "sweep",
    "grid",
    # How the decision is made (`rule`) and on which rows (`folds`): no model trains by
    # either, except a fold's model, whose rows depend on the number of folds: its training
    # set carries it (`ingredients`).
    "choose",
)

# The lab's code on the training path, by content: what dvc.yaml's `train` stage depends on
# besides MLflow (tests/test_model_key.py checks the two lists agree).
TRAINING_CODE = (
    "train.py",
    "compute",
    "config",
    "core",
    "datasets",
    "modeling",
    "model_store",
)
_PACKAGE = Path(__file__).resolve().parents[1]

# oneDNN's instruction sets in order, with the CPU flags each needs (Linux's names).
_ISA_LADDER = (
    ("SSE41", {"sse4_1"}),
    ("AVX", {"avx"}),
    ("AVX2", {"avx2", "fma"}),
    ("AVX512_CORE", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}),
    ("AVX512_CORE_VNNI", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}),
)


def code_digest() -> str:
    files: list[Path] = []
    for part in TRAINING_CODE:
        path = _PACKAGE / part
        files += [path] if path.is_file() else list(path.rglob("*.py"))
    return files_digest(files, _PACKAGE)


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return set()


def effective_cpu_isa() -> str:
    """The instruction set oneDNN's kernels use here: the highest the CPU has, capped by
    ONEDNN_MAX_CPU_ISA (core/runtime.py sets AVX2). Unknown caps and CPUs give their whole
    description, so unlike machines never share a key."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    flags = cpu_flags()
    names = [name for name, _ in _ISA_LADDER]
    if platform.machine() in ("x86_64", "AMD64") and (cap in names or cap == "ALL"):
        allowed = _ISA_LADDER if cap == "ALL" else _ISA_LADDER[: names.index(cap) + 1]
        has = [name for name, needs in allowed if needs <= flags]
        beyond = cap == "ALL" and any(f.startswith(("avx512", "amx")) for f in flags)
        if has and not beyond:
            return has[-1]
    return f"{platform.machine()} cap={cap} flags={','.join(sorted(flags))}"


def environment() -> dict[str, str]:
    """What decides a float32 result's bits besides params, data and code
    (docs/reliability.md): the numeric libraries' versions and oneDNN's instruction set."""
    import keras
    import numpy
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu_isa": effective_cpu_isa(),
    }


@dataclass(frozen=True)
class Fingerprint:
    """What every model of one stage run shares in its key."""

    settings: dict  # the configuration without NOT_IN_KEY
    data: str  # digest of the prepared data
    builder_files: str  # digest of the user's builder folder; "" for a built-in builder
    code: str
    environment: dict[str, str]
    start_file: str = ""  # digest of model.start_from's file (fine-tuning); "" without one

    @classmethod
    def of(cls, config: LabConfig, prepared_dir: Path, builder: BuilderRef) -> Fingerprint:
        return cls(
            settings=without(config.model_dump(mode="json"), NOT_IN_KEY),
            data=folder_digest(prepared_dir),
            builder_files=folder_digest(builder.file.parent) if builder.is_users else "",
            code=code_digest(),
            environment=environment(),
            start_file=(
                files_digest([builder.start_file], builder.start_file.parent)
                if builder.fine_tunes
                else ""
            ),
        )


def without(settings: dict, dotted: Iterable[str]) -> dict:
    pruned = json.loads(json.dumps(settings))
    for path in dotted:
        *parents, leaf = path.split(".")
        node = pruned
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return pruned


def ingredients(
    fingerprint: Fingerprint, config: LabConfig, entry, seed: int, training_set
) -> dict:
    """Everything model (`entry`, `seed`) on `training_set` (compute.groups.TrainingSet)
    depends on; `entry`: a config.EntrySpec. Its name is not in it: two entries with the
    same settings share their models."""
    fine_tuning = {}
    if fingerprint.start_file:
        # The start's weights by content; whether this entry starts from them, its pull
        # toward them and its frozen layers, as resolved per layer.
        tuning = entry.tuning
        fine_tuning = {
            "start_file": fingerprint.start_file,
            "from_start": tuning.from_start,
            "sp_rates": [list(pair) for pair in tuning.sp_rates],
            "frozen": list(tuning.frozen),
        }
    return {
        **fine_tuning,
        "format": STORE_FORMAT,
        "settings": fingerprint.settings,
        # The entry as written (every field, so new ones are in) and as resolved per layer.
        "entry": config.sweep[entry.name].model_dump(mode="json"),
        "layer_rates": [list(pair) for pair in entry.layer_rates],
        "seed": seed,
        "training_set": training_rows(training_set, config.choose.folds),
        "data": fingerprint.data,
        "builder_files": fingerprint.builder_files,
        "code": fingerprint.code,
        "environment": fingerprint.environment,
    }


def as_trained_on(ingredients_: dict, node_environment: dict[str, str]) -> dict:
    """`ingredients_` with the numeric environment of the process that trained the model (a
    worker, a Ray node), which may not be the stage's: a model is stored under the key of
    where its bits were made, and found only by a stage whose machine makes the same."""
    keyed = ingredients_["environment"]
    return {**ingredients_, "environment": {k: node_environment.get(k, "unknown") for k in keyed}}


def training_rows(training_set, folds: int | None) -> list | None:
    """compute.groups.TrainingSet as plain data; a fold's with the number of folds, which
    decides its rows."""
    if training_set is None:
        return None
    if training_set[0] == "fold":
        return [*training_set, folds]
    return list(training_set)


def digest_of(ingredients_: dict) -> str:
    text = json.dumps(ingredients_, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# What may differ between machines or checkouts while the settings stay: named when a stored
# model of the same settings is not reused, to say why it retrains.
CONTEXT = ("code", "environment", "builder_files", "data", "format")


def settings_digest(ingredients_: dict) -> str:
    """The key without CONTEXT: models trained for the same settings elsewhere share it."""
    return digest_of({k: v for k, v in ingredients_.items() if k not in CONTEXT})

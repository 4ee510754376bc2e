"""Trained models by key, in a folder at the project root: complete or absent, checked on read.

Each model is a folder `<store>/<key[:2]>/<key>/`: its weights (`weights.npz`), its per-epoch
history as the stage wrote it, `record.json` (what it was trained for, where it diverged,
the MLflow run that trained it) and `manifest.json`, the sha256 of each of those files. A
model is written into a private folder and renamed into place, so readers see all of it or
nothing; a reader checks every digest before it trusts a byte, so a truncated or altered
model is trained again, never loaded. Only the stage's process reads or writes the store
(never a worker or a Ray task). When two queued experiments store the same key, the first
rename wins and the other copy is dropped: both hold the same bits.

The store is bounded (`L2LAB_MODEL_STORE_MAX_GB`, default 2): after each stage the least
recently used models beyond that size are removed. `python -m pipeline.model_store` shows
and prunes it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.project_root import project_root

log = logging.getLogger(__name__)

STORE_ENV = "L2LAB_MODEL_STORE"
MAX_SIZE_ENV = "L2LAB_MODEL_STORE_MAX_GB"
DEFAULT_MAX_GB = 2.0
DEFAULT_FOLDER = "model-store"
_INCOMING = ".incoming"
WEIGHTS, HISTORY, RECORD, MANIFEST = "weights.npz", "history.csv", "record.json", "manifest.json"


def store_location() -> Path:
    """L2LAB_MODEL_STORE (relative paths from the project root), else `model-store/` there."""
    root = project_root()
    configured = os.environ.get(STORE_ENV, "").strip()
    return root / configured if configured else root / DEFAULT_FOLDER


def max_bytes() -> int:
    raw = os.environ.get(MAX_SIZE_ENV, "").strip()
    try:
        gigabytes = float(raw) if raw else DEFAULT_MAX_GB
    except ValueError:
        log.warning("warning: %s=%r is not a number of GB; using %g", MAX_SIZE_ENV, raw,
                    DEFAULT_MAX_GB)  # fmt: skip
        gigabytes = DEFAULT_MAX_GB
    return int(gigabytes * 1024**3)


@dataclass
class StoredModel:
    """One trained model as the store keeps it."""

    weights: list  # numpy arrays, model.get_weights() order
    history: bytes  # the model's history.csv, as the stage wrote it
    diverged_at_epoch: int | None
    trained_by: dict = field(default_factory=dict)  # the MLflow run_id and model_uri
    ingredients: dict = field(default_factory=dict)  # model_store.key.ingredients


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _weights_bytes(weights: list) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, *weights)
    return buffer.getvalue()


def _weights_of(data: bytes) -> list:
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


class Damaged(Exception):
    """A stored model whose files do not match its manifest."""


class ModelStore:
    def __init__(self, root: Path):
        self.root = root
        self.problems: list[str] = []  # one warning line each, said once by the stage
        self.written: set[str] = set()  # keys put by this stage: never evicted by `bound`

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> StoredModel | None:
        """The model stored for `key`, or None when there is none or it cannot be trusted
        (then it is removed, and the stage trains it again)."""
        folder = self.folder(key)
        try:
            if not folder.is_dir():
                return None
            files = self._checked_files(folder)
            record = json.loads(files[RECORD])
            model = StoredModel(
                weights=_weights_of(files[WEIGHTS]),
                history=files[HISTORY],
                diverged_at_epoch=record["diverged_at_epoch"],
                trained_by=record["trained_by"],
                ingredients=record["ingredients"],
            )
            os.utime(folder)  # its last use, for the size bound
            return model
        except Damaged as damage:
            self.problems.append(f"stored model {key[:12]} is damaged ({damage}); retraining it")
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError, KeyError) as error:
            self.problems.append(f"cannot read the model store at {self.root} ({error})")
        return None

    def _checked_files(self, folder: Path) -> dict[str, bytes]:
        try:
            manifest = json.loads((folder / MANIFEST).read_bytes())
        except (OSError, ValueError) as error:
            raise Damaged(f"{MANIFEST}: {error}") from None
        files = {}
        for name in (WEIGHTS, HISTORY, RECORD):
            try:
                data = (folder / name).read_bytes()
            except OSError as error:
                raise Damaged(f"{name}: {error.strerror or error}") from None
            if _sha256(data) != manifest.get(name):
                raise Damaged(f"{name}: its digest does not match")
            files[name] = data
        return files

    def put(self, key: str, model: StoredModel) -> None:
        """Store `model` under `key` unless a model is there already; a store that cannot be
        written (deleted, read-only, full) costs a warning, never the sweep."""
        target = self.folder(key)
        incoming = self.root / _INCOMING / uuid.uuid4().hex
        record = {
            "diverged_at_epoch": model.diverged_at_epoch,
            "trained_by": model.trained_by,
            "ingredients": model.ingredients,
        }
        files = {
            WEIGHTS: _weights_bytes(model.weights),
            HISTORY: model.history,
            RECORD: json.dumps(record, indent=1, sort_keys=True).encode(),
        }
        try:
            if target.is_dir() and self._holds(key, model):
                return
            incoming.mkdir(parents=True)
            for name, data in files.items():
                (incoming / name).write_bytes(data)
            manifest = {name: _sha256(data) for name, data in files.items()}
            (incoming / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                incoming.rename(target)
            except OSError:
                if not target.is_dir():  # not another writer's copy of the same model
                    raise
            self.written.add(key)
        except OSError as error:
            self.problems.append(
                f"cannot write the model store at {self.root} ({error.strerror or error});"
                " the models trained are in models/ but will train again next time"
            )
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    def _holds(self, key: str, model: StoredModel) -> bool:
        """Whether the model stored for `key` has `model`'s bits. Checked when a model was
        trained again although stored (`dvc repro -f`): different bits for one key mean the
        key misses an input they depend on; the new model replaces the stored one."""
        stored = self.get(key)
        if stored is None:
            return False
        if (
            len(stored.weights) == len(model.weights)
            and all(
                a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
                for a, b in zip(stored.weights, model.weights, strict=True)
            )
            and stored.history == model.history
        ):
            return True
        self.problems.append(
            f"model {key[:12]} trained again to other bits than the stored one: its key misses"
            " an input the bits depend on (please report it); the stored model is replaced"
        )
        shutil.rmtree(self.folder(key), ignore_errors=True)
        return False

    def entries(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(
            folder
            for prefix in self.root.iterdir()
            if prefix.is_dir() and prefix.name != _INCOMING
            for folder in prefix.iterdir()
            if folder.is_dir()
        )

    @staticmethod
    def size_of(folder: Path) -> int:
        return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())

    def bound(self, limit: int, keep: set[str]) -> list[Path]:
        """Remove the least recently used models until the store is within `limit` bytes,
        never one of `keep` (the keys the stage looked up) nor one it wrote; returns what was
        removed."""
        sized = [(folder.stat().st_mtime, folder, self.size_of(folder)) for folder in
                 self.entries()]  # fmt: skip
        total = sum(size for *_, size in sized)
        removed = []
        for _, folder, size in sorted(sized, key=lambda item: item[0]):
            if total <= limit:
                break
            if folder.name in keep or folder.name in self.written:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            removed.append(folder)
        return removed

    def remove_unused_since(self, seconds: float) -> list[Path]:
        cutoff = time.time() - seconds
        removed = [folder for folder in self.entries() if folder.stat().st_mtime < cutoff]
        for folder in removed:
            shutil.rmtree(folder, ignore_errors=True)
        return removed

    def close(self, keep: set[str]) -> None:
        """At the end of a stage: the store within its size bound (`keep`: the keys the stage
        looked up), then each problem met said once."""
        self.bound(max_bytes(), keep)
        self.warn()

    def warn(self) -> None:
        """Each problem met, once, as one warning line."""
        for problem in dict.fromkeys(self.problems):
            log.warning("warning: %s", problem)
        self.problems.clear()

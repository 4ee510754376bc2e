"""data/prepared/meta.json, written by `prepare` and read by every later stage: what the
prepared data is (its task, classes or target statistics, rows and shapes). A part of the
contracts between stages (contracts.py re-exports it), kept apart for its size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import DataError


@dataclass(frozen=True)
class PreparedMeta:
    source: str
    class_names: tuple[str, ...]
    n_features: int
    rows: dict[str, int]
    train_labels_flipped: int
    # The shape of one example; the splits store it flattened (n_features columns).
    input_shape: tuple[int, ...]
    pool_rows: int = 0  # rows of POOL_FILE: every training row before train_subset
    # A CSV's rows dropped for a missing value (of `rows_read`); written only when some were.
    incomplete_rows_dropped: int = 0
    rows_read: int = 0
    task: str = "classification"  # core/task.py; written only when it is regression
    # Regression: the training rows' target mean and standard deviation. The splits hold
    # the target standardised with them (`label` = (y - mean) / std), so that one L2 rate
    # means the same whatever the target's units; figures are computed after un-doing it.
    target_mean: float | None = None
    target_std: float | None = None

    @property
    def n_classes(self) -> int:
        """Classification: the number of classes. Regression has no classes (0)."""
        return len(self.class_names)

    @property
    def n_outputs(self) -> int:
        """The model's output width: one probability per class, or one value."""
        return 1 if self.is_regression else self.n_classes

    @property
    def is_regression(self) -> bool:
        return self.task == "regression"

    def in_target_units(self, standardised):
        """Values of the standardised target (or predictions of it) in the target's units."""
        return standardised * self.target_std + self.target_mean


META_FILE = "meta.json"
# The whole training split in nested order, clean labels: entries with their own training-set
# size or label noise train on a prefix of it (pipeline/datasets/subsets.py).
POOL_FILE = "train_pool.parquet"
# The training split's rows with clean labels, then the validation split's: what k-fold
# cross-validation cuts into folds (pipeline/datasets/folds.py).
CV_POOL_FILE = "cv_pool.parquet"


def write_meta(prepared_dir: Path, meta: PreparedMeta) -> None:
    payload = {
        **meta.__dict__,
        "class_names": list(meta.class_names),
        "input_shape": list(meta.input_shape),
    }
    if not meta.incomplete_rows_dropped:  # a complete table's meta.json stays as it was
        del payload["incomplete_rows_dropped"], payload["rows_read"]
    if not meta.is_regression:  # a classification's meta.json stays as it was
        del payload["task"], payload["target_mean"], payload["target_std"]
    (prepared_dir / META_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_meta(prepared_dir: Path) -> PreparedMeta:
    path = prepared_dir / META_FILE
    try:
        payload = json.loads(path.read_text())
        payload["input_shape"] = tuple(payload["input_shape"])
        return PreparedMeta(**{**payload, "class_names": tuple(payload["class_names"])})
    except FileNotFoundError:
        raise DataError(f"{path}: prepared metadata missing; run `dvc repro prepare`") from None
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}: unreadable; run `dvc repro -f prepare`") from None

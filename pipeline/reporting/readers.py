"""What the report reads from train's and evaluate's outputs, without loading Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.choosing import Judge
from pipeline.core import contracts
from pipeline.core.errors import DataError


def read_histories(models_dir: Path, entries: list[str]) -> dict[str, pd.DataFrame]:
    histories = {}
    for entry in entries:
        path = contracts.model_dir(models_dir, entry) / contracts.HISTORY_FILE
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro train`")
        histories[entry] = pd.read_csv(path)
    return histories


def read_kernels(details_dir: Path, entries: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """entry -> layer -> kernel, for the entries that have a model (not diverged)."""
    path = details_dir / contracts.KERNELS_FILE
    if not path.is_file():
        raise DataError(f"{path}: missing; run `dvc repro evaluate`")
    kernels: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as archive:
        for key in archive.files:
            entry, layer = key.split("/", 1)
            if entry in entries:
                kernels.setdefault(entry, {})[layer] = archive[key]
    return kernels


def read_judge(details_dir: Path, cross_validated: bool = False) -> Judge:
    """The judge over the held-out rows evaluate kept: the validation labels and each entry's
    predicted class (a regression: value) on them (`cross_validated`: the pooled held-out
    folds')."""
    name = contracts.HELD_OUT_CV_FILE if cross_validated else contracts.HELD_OUT_FILE
    path = details_dir / name
    if not path.is_file():
        raise DataError(f"{path}: missing; run `dvc repro evaluate`")
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    labels = arrays.pop(contracts.HELD_OUT_LABELS)
    return Judge.of_held_out(labels, arrays)


def read_test_intervals(details_dir: Path, entries: list[str]) -> dict[str, list[float]]:
    """entry -> the 95% interval of its base seed's test figure that evaluate wrote for a
    regression (`test_interval`); classification's entries have none (Wilson's, from counts)."""
    found = {}
    for entry in entries:
        details = contracts.read_stage_json(details_dir / f"{entry}.json", "evaluate")
        if "test_interval" in details:
            found[entry] = details["test_interval"]
    return found

"""The `data:` keys checked against each other and against the task, one line per mistake.

`check_data_keys` runs in `load_config` (every stage); `check_regression_keys` runs in
`prepare` once the data has said its task (`data.task: auto` is decided by the target).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config.schema import RAW_DATA_DIR, LabConfig
from pipeline.core.errors import ConfigError

# The keys each source reads; set for another source they would be silently ignored.
_SOURCE_KEYS = {
    "csv_path": "csv",
    "target_column": "csv",
    "image_dir": "images",
    "npz_path": "npz",
}
# Sources whose labels are classes by nature: data.task: regression is refused for them.
_CLASS_SOURCES = {
    "digits": "the digits are classes (0 to 9); use data.task: auto or classification, or"
    " your own data (data.source: csv or npz)",
    "images": "an image folder's labels are its class folders; use data.task: auto or"
    " classification, or save the images with their targets as an .npz (data.source: npz,"
    " y as numbers)",
}


def check_data_keys(config: LabConfig, path: Path) -> None:
    """Raise ConfigError for the first `data:` setting that cannot apply as written."""
    _check_source_settings(config, path)
    data = config.data
    if data.source == "csv" and not (data.csv_path and data.target_column):
        raise ConfigError(
            f"{path}: data.source is 'csv' but data.csv_path or data.target_column is empty;"
            f" set both (e.g. csv_path: data/raw/my.csv, target_column: label)"
        )
    raw = Path(os.path.normpath(data.csv_path or RAW_DATA_DIR))
    if data.source == "csv" and (raw.is_absolute() or RAW_DATA_DIR not in raw.parents):
        raise ConfigError(
            f"{path}: data.csv_path = {data.csv_path!r}: put the CSV under {RAW_DATA_DIR}/ and"
            f" give its path from the project root (e.g. {RAW_DATA_DIR}/my.csv), so that DVC"
            f" reruns prepare when the file changes"
        )
    if data.test_fraction + data.val_fraction >= 1.0:
        raise ConfigError(
            f"{path}: data.test_fraction + data.val_fraction = "
            f"{data.test_fraction + data.val_fraction:g}; it must leave rows for training (< 1)"
        )


def _check_source_settings(config: LabConfig, path: Path) -> None:
    """Settings for a source that is not selected are refused: the user meant something."""
    data = config.data
    for key, source in _SOURCE_KEYS.items():
        if getattr(data, key) and data.source != source:
            raise ConfigError(
                f"{path}: data.{key} is set but data.source is {data.source!r}: set data.source:"
                f" {source} to use it, or data.{key}: null"
            )
    if data.drop_columns and data.source != "csv":
        raise ConfigError(
            f"{path}: data.drop_columns is set but data.source is {data.source!r}: it leaves out"
            f" a CSV's columns; set data.drop_columns: [] (or data.source: csv)"
        )
    if data.task == "classification" and data.source == "diabetes":
        raise ConfigError(
            f"{path}: data.task = 'classification' with data.source: diabetes: its target is a"
            f" quantity (disease progression); use data.task: auto or regression"
        )
    if data.task == "regression" and data.source in _CLASS_SOURCES:
        raise ConfigError(
            f"{path}: data.task = 'regression' with data.source: {data.source}:"
            f" {_CLASS_SOURCES[data.source]}"
        )
    if data.source != "digits":
        return
    for key in ("train_subset", "label_noise"):
        if getattr(data, key) is not None:
            raise ConfigError(
                f"{path}: data.{key} applies to your own data; the digits demo's is"
                f" data.digits.{key}: set that, or data.{key}: null"
            )


def check_regression_keys(config: LabConfig, path: Path) -> None:
    """Label noise moves a label to another class; a regression target has none, so noise
    set anywhere (data, an entry, the grid) is refused rather than silently ignored."""
    reason = (
        "the target is a quantity (regression), and moving a label to another class has no"
        " meaning there"
    )
    if config.data.label_noise is not None:
        raise ConfigError(
            f"{path}: data.label_noise = {config.data.label_noise:g}: {reason}; set"
            f" data.label_noise: null"
        )
    if any(noise is not None for noise in config.grid.label_noise):
        raise ConfigError(
            f"{path}: grid.label_noise = {_listed(config.grid.label_noise)}: {reason}; set"
            f" grid.label_noise: [null]"
        )
    for name, entry in config.sweep.items():
        if entry.label_noise is not None:
            raise ConfigError(
                f"{path}: sweep.{name}.label_noise = {entry.label_noise:g}: {reason}; remove"
                f" it from the entry"
            )


def _listed(values: list[float | None]) -> str:
    return "[" + ", ".join("null" if v is None else f"{v:g}" for v in values) + "]"

"""Where the examples come from: scikit-learn's bundled digits (classes) or diabetes table
(a quantity), a user's CSV (table.py), a
folder of images or an `.npz` of arrays (arrays.py).

The digits and an image folder are classes; a CSV's target says its own task under
`data.task: auto`; an `.npz` is classes unless `data.task: regression` (targets.py).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.schema import DataConfig
from pipeline.core.errors import DataError
from pipeline.core.preparation import NUMBER, Column
from pipeline.core.task import REGRESSION
from pipeline.datasets import arrays, targets
from pipeline.datasets.examples import MIN_ROWS_PER_CLASS, Dataset
from pipeline.datasets.table import load_csv

log = logging.getLogger(__name__)

__all__ = ["Dataset", "load_dataset"]


def load_dataset(config: DataConfig, project_root: Path) -> Dataset:
    if config.source == "digits":
        dataset = _load_digits(as_images=config.shape == "image")
    elif config.source == "diabetes":
        dataset = _load_diabetes()
    elif config.source == "csv":
        dataset = load_csv(
            project_root / config.csv_path, config.target_column, config.task, config.drop_columns
        )
    elif config.source == "images":
        path = project_root / config.image_dir
        x, codes, classes = arrays.load_image_folder(
            path, tuple(config.image_size), config.color_mode
        )
        dataset = _checked(x, codes, classes, path.name, "class folder", "add images to it")
    else:
        dataset = _load_npz(project_root / config.npz_path, config)
    if config.shape == "flat":
        features = dataset.features
        dataset = dataclasses.replace(dataset, features=features.reshape(len(features), -1))
    return dataset


def _load_npz(path: Path, config: DataConfig) -> Dataset:
    """An `.npz`'s x in its own shape (or as images with data.shape: image); y as classes,
    or as the target with data.task: regression."""
    x, y = arrays.load_npz(path)
    if config.shape == "image" and x.ndim not in (3, 4):
        raise DataError(
            f"data.shape = 'image': {path.name}'s x has shape {x.shape}, not examples x "
            f"height x width [x channels]; reshape x or leave data.shape null"
        )
    x = x[..., None] if config.shape == "image" and x.ndim == 3 else x
    if config.task == REGRESSION:
        target = targets.regression_target(y, path.name, "y", config.task)
        log.info(
            "%s: %d examples of shape %s, a quantity to predict (%g to %g)",
            path.name, len(target), x.shape[1:], target.min(), target.max(),
        )  # fmt: skip
        return Dataset(features=x, labels=target, class_names=(), task=REGRESSION)
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)  # 0.0/1.0 are classes 0 and 1
    codes, classes = pd.factorize(y.astype(str) if y.dtype.kind in "USO" else y, sort=True)
    names = tuple(str(c) for c in classes)
    dataset = _checked(x, codes.astype(np.int64), names, path.name, "label", "add examples")
    values = tuple(c.item() if hasattr(c, "item") else c for c in classes)
    return dataclasses.replace(dataset, label_values=values)


def _checked(x, codes, classes, name: str, what: str, fix: str) -> Dataset:
    """The classes of an image folder or .npz, refused if a classifier cannot split them."""
    if len(classes) < 2:
        raise DataError(f"{name}: a single class ({', '.join(classes)}); a classifier needs two")
    counts = np.bincount(codes, minlength=len(classes))
    if counts.min() < MIN_ROWS_PER_CLASS:
        rare = classes[int(counts.argmin())]
        raise DataError(
            f"{name}: {what} {rare!r} has only {counts.min()} example(s); every class needs at "
            f"least {MIN_ROWS_PER_CLASS} (train, validation and test each need one): {fix}"
        )
    log.info("%s: %d examples of shape %s, %d classes", name, len(codes), x.shape[1:], len(classes))
    return Dataset(features=x, labels=codes, class_names=tuple(classes))


def _load_diabetes() -> Dataset:
    """scikit-learn's diabetes table (Efron et al. 2004, bundled: no network): 442 patients,
    10 baseline measurements (age, sex, BMI, blood pressure, six blood serum values) in their
    original units, and the target, a measure of disease progression one year later."""
    from sklearn.datasets import load_diabetes

    table = load_diabetes(scaled=False)
    target = table.target.astype(np.float64)
    log.info(
        "diabetes: %d rows, %d feature columns, a quantity to predict (%g to %g)",
        len(target), table.data.shape[1], target.min(), target.max(),
    )  # fmt: skip
    return Dataset(
        features=table.data.astype(np.float32),
        labels=target,
        class_names=(),
        task=REGRESSION,
        columns=tuple(Column(name, NUMBER) for name in table.feature_names),
        target_column="target",
    )


def _load_digits(as_images: bool = False) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()  # bundled with scikit-learn: no network
    # `images` is `data` unflattened (8x8, row by row), so both give the same numbers.
    features = digits.images[..., None] if as_images else digits.data
    return Dataset(
        features=features.astype(np.float32),
        labels=digits.target.astype(np.int64),
        class_names=tuple(str(name) for name in digits.target_names),
        label_values=tuple(int(name) for name in digits.target_names),
    )

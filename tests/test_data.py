"""Splits, label noise and scaling on real data; user CSVs and their errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_params, write_yaml

from pipeline import data
from pipeline.errors import DataError
from pipeline.prepare import prepare


def test_prepare_writes_stratified_splits_with_noise_only_in_train(tmp_path: Path):
    params = tiny_params()
    write_yaml(tmp_path / "params.yaml", params)
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    meta = data.read_meta(tmp_path / "prepared")
    splits = {name: data.read_split(tmp_path / "prepared", name) for name in data.SPLITS}

    assert meta["rows"]["train"] == params["data"]["train_subset"] == len(splits["train"].labels)
    assert meta["rows"]["test"] == math.ceil(
        1797 * params["data"]["test_fraction"]
    )  # sklearn rounds up
    for split in splits.values():
        assert set(np.unique(split.labels)) == set(range(10))  # stratified: every class present
    train = pd.read_parquet(tmp_path / "prepared" / "train.parquet")
    assert train[data.FLIPPED].sum() == round(0.2 * len(train)) == meta["train_labels_flipped"]
    # Scaling is fitted on the training rows only: exactly [0, 1] there, not elsewhere.
    assert splits["train"].features.min() == 0.0 and splits["train"].features.max() == 1.0
    assert splits["test"].features.max() > 1.0 or splits["test"].features.min() < 0.0


def test_prepare_is_byte_for_byte_repeatable(tmp_path: Path):
    write_yaml(tmp_path / "params.yaml", tiny_params())
    prepare(tmp_path / "params.yaml", tmp_path / "a")
    prepare(tmp_path / "params.yaml", tmp_path / "b")
    for name in ("train.parquet", "val.parquet", "test.parquet", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_flipped_labels_always_change_class():
    labels = np.repeat(np.arange(5), 40)
    noisy, flipped = data.flip_labels(labels, n_classes=5, fraction=0.25, seed=3)
    assert flipped.sum() == 50
    assert np.all(noisy[flipped] != labels[flipped])
    assert np.all(noisy[~flipped] == labels[~flipped])


def _csv_params(tmp_path: Path, csv_name: str, target: str) -> Path:
    params = tiny_params()
    params["data"].update(source="csv", csv_path=csv_name, target_column=target, train_subset=None)
    write_yaml(tmp_path / "params.yaml", params)
    return tmp_path / "params.yaml"


def test_user_csv_with_string_labels(tmp_path: Path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    frame["species"] = np.where(frame["a"] > 0, "setosa", "virginica")
    frame.to_csv(tmp_path / "flowers.csv", index=False)
    prepare(_csv_params(tmp_path, "flowers.csv", "species"), tmp_path / "prepared")
    meta = data.read_meta(tmp_path / "prepared")
    assert meta["class_names"] == ["setosa", "virginica"]
    assert meta["n_features"] == 4
    assert sum(meta["rows"].values()) == 120


@pytest.mark.parametrize(
    ("content", "target", "expected"),
    [
        (None, "y", "no such file"),
        ("", "y", "the file is empty"),
        ("a,b\n1,2\n3,4\n", "y", "no target column 'y'"),
        ("a,y\n1,0\n2,0\n3,0\n", "y", "single class"),
        ("a,y\nx,0\nz,1\n", "y", "not numeric"),
    ],
)
def test_bad_user_csv_is_named(tmp_path: Path, content, target, expected):
    if content is not None:
        (tmp_path / "user.csv").write_text(content)
    with pytest.raises(DataError, match=expected):
        prepare(_csv_params(tmp_path, "user.csv", target), tmp_path / "prepared")
    assert not (tmp_path / "prepared").exists()


def test_failed_prepare_leaves_earlier_splits_in_place(tmp_path: Path):
    write_yaml(tmp_path / "params.yaml", tiny_params())
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    before = (tmp_path / "prepared" / "train.parquet").read_bytes()
    with pytest.raises(DataError):
        prepare(_csv_params(tmp_path, "missing.csv", "y"), tmp_path / "prepared")
    assert (tmp_path / "prepared" / "train.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "params.yaml",
        "prepared",
    ]

"""Splits, label noise and scaling on real data; user CSVs and their errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.core import contracts
from pipeline.core.errors import DataError
from pipeline.datasets import prepared
from pipeline.prepare import prepare
from pipeline.reporting.data_note import training_data_note
from tests.support.params import tiny_params, write_yaml


def test_prepare_writes_stratified_splits_with_noise_only_in_train(tmp_path: Path):
    params = tiny_params()
    write_yaml(tmp_path / "params.yaml", params)
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    meta = contracts.read_meta(tmp_path / "prepared")
    splits = {name: prepared.read_split(tmp_path / "prepared", name) for name in prepared.SPLITS}

    demo = params["data"]["digits"]
    assert meta.rows["train"] == demo["train_subset"] == len(splits["train"].labels)
    assert meta.rows["test"] == math.ceil(
        1797 * params["data"]["test_fraction"]
    )  # sklearn rounds up
    for split in splits.values():
        assert set(np.unique(split.labels)) == set(range(10))  # stratified: every class present
    train = pd.read_parquet(tmp_path / "prepared" / "train.parquet")
    assert train[prepared.FLIPPED].sum() == round(0.2 * len(train)) == meta.train_labels_flipped
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
    noisy, flipped = prepared.flip_labels(labels, n_classes=5, fraction=0.25, seed=3)
    assert flipped.sum() == 50
    assert np.all(noisy[flipped] != labels[flipped])
    assert np.all(noisy[~flipped] == labels[~flipped])


def _raw(project: Path) -> Path:
    raw = project / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    return raw


def _csv_params(tmp_path: Path, csv_name: str, target: str) -> Path:
    params = tiny_params()
    params["data"].update(source="csv", csv_path=f"data/raw/{csv_name}", target_column=target)
    write_yaml(tmp_path / "params.yaml", params)
    return tmp_path / "params.yaml"


def test_user_csv_with_string_labels(tmp_path: Path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    frame["species"] = np.where(frame["a"] > 0, "setosa", "virginica")
    frame.to_csv(_raw(tmp_path) / "flowers.csv", index=False)
    prepare(_csv_params(tmp_path, "flowers.csv", "species"), tmp_path / "prepared")
    meta = contracts.read_meta(tmp_path / "prepared")
    assert meta.class_names == ("setosa", "virginica")
    assert meta.n_features == 4
    assert sum(meta.rows.values()) == 120


def test_the_demos_subset_and_noise_are_said_in_one_sentence(tmp_path: Path):
    write_yaml(tmp_path / "params.yaml", tiny_params())
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    meta = contracts.read_meta(tmp_path / "prepared")
    note = training_data_note(meta, load_config(tmp_path / "params.yaml").data)
    assert note == (
        "Training data changed on purpose: 80 of 1077 training rows kept"
        " (data.digits.train_subset) and 16 of 80 training labels moved to another class"
        " (data.digits.label_noise); validation and test data are as given."
    )


@pytest.mark.parametrize(
    ("batch_size", "sweep", "expected"),
    [
        (100000, {}, "train.batch_size = 100000 is larger than the training split (80 rows)"),
        (32, {"small": {"train_size": 20}}, "larger than sweep.small's training set (20 rows)"),
    ],
)
def test_a_batch_larger_than_a_training_set_is_refused(tmp_path, batch_size, sweep, expected):
    params = tiny_params()
    params["train"]["batch_size"] = batch_size
    params["sweep"].update(sweep)
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(DataError) as caught:
        prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    assert expected in str(caught.value) and "full-batch" in str(caught.value)
    assert not (tmp_path / "prepared").exists()


def test_a_users_csv_is_used_whole_with_its_labels_as_given(tmp_path: Path):
    # Only the three data keys a user sets: the digits demo's subset and noise stay out.
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(400, 3)), columns=list("abc"))
    frame["kind"] = np.where(frame["a"] > 0, "p", "q")
    frame.to_csv(_raw(tmp_path) / "mine.csv", index=False)
    params = _csv_params(tmp_path, "mine.csv", "kind")
    assert load_config(params).data.digits.label_noise > 0  # the demo's, still in the file
    prepare(params, tmp_path / "prepared")
    meta = contracts.read_meta(tmp_path / "prepared")
    assert meta.train_labels_flipped == 0 and meta.incomplete_rows_dropped == 0
    assert meta.rows["train"] == meta.pool_rows == 400 - 100 - 60
    assert "incomplete_rows_dropped" not in (tmp_path / "prepared" / "meta.json").read_text()
    assert training_data_note(meta, load_config(params).data) is None
    train = pd.read_parquet(tmp_path / "prepared" / "train.parquet")
    assert not train[prepared.FLIPPED].any()


def test_asked_for_subset_and_noise_are_said_in_one_sentence(tmp_path: Path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(400, 3)), columns=list("abc"))
    frame["kind"] = np.where(frame["a"] > 0, "p", "q")
    frame.to_csv(_raw(tmp_path) / "mine.csv", index=False)
    params = tiny_params()
    params["data"].update(
        source="csv", csv_path="data/raw/mine.csv", target_column="kind", train_subset=100,
        label_noise=0.1,
    )  # fmt: skip
    write_yaml(tmp_path / "params.yaml", params)
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    meta = contracts.read_meta(tmp_path / "prepared")
    assert training_data_note(meta, load_config(tmp_path / "params.yaml").data) == (
        "Training data changed on purpose: 100 of 240 training rows kept (data.train_subset)"
        " and 10 of 100 training labels moved to another class (data.label_noise); validation"
        " and test data are as given."
    )


def _rows(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


# Two well-separated classes, 20 rows each, so every accepted file can be split.
_GOOD = [f"{i},{i % 2 * 10 + 0.5}" for i in range(40)]
_GOOD_LABELS = [("a" if i % 2 else "b") for i in range(40)]


def _good(extra_header: str = "", extra=None) -> str:
    rows = [
        f"{x},{label}" + (f",{extra(i)}" if extra else "")
        for i, (x, label) in enumerate(zip(_GOOD, _GOOD_LABELS, strict=True))
    ]
    return _rows("n,x,y" + extra_header, rows)


def test_user_csv_categorical_missing_and_boolean_are_handled_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    def extra(i: int) -> str:
        color = ("red", "green", "blue")[i % 3]
        return f"{'' if i == 7 else color},{i % 4 == 0},"  # a gap, a boolean, an empty column

    (_raw(tmp_path) / "user.csv").write_text(_good(",color,flag,notes", extra))
    with caplog.at_level("INFO", logger="pipeline.datasets"):
        prepare(_csv_params(tmp_path, "user.csv", "y"), tmp_path / "prepared")
    meta = contracts.read_meta(tmp_path / "prepared")
    assert meta.class_names == ("a", "b")
    assert meta.n_features == 2 + 3 + 1  # n, x, color one-hot (3), flag
    assert sum(meta.rows.values()) == 39  # the row with the gap is dropped
    # ... and the report says so (meta.json records it only when rows were dropped).
    assert (meta.incomplete_rows_dropped, meta.rows_read) == (1, 40)
    note = training_data_note(meta, load_config(tmp_path / "params.yaml").data)
    assert note == "Data changed: 1 of 40 rows dropped for a missing value before splitting."
    logged = caplog.text
    assert "dropped empty column(s) notes" in logged
    assert "dropped 1 of 40 rows with missing values (in color)" in logged
    assert "one-hot encoded text column 'color' into 3 columns (blue, green, red)" in logged
    train = prepared.read_split(tmp_path / "prepared", "train")
    onehot = train.features[:, 2:5]
    assert set(np.unique(onehot)) <= {0.0, 1.0}  # minmax keeps 0/1 indicators as they are


def test_user_csv_float_labels_with_gaps_become_integer_classes(tmp_path: Path):
    rows = [f"{i},{'' if i == 3 else float(i % 2)}" for i in range(30)]
    (_raw(tmp_path) / "user.csv").write_text(_rows("x,y", rows))
    prepare(_csv_params(tmp_path, "user.csv", "y"), tmp_path / "prepared")
    assert contracts.read_meta(tmp_path / "prepared").class_names == ("0", "1")


_MANY_GAPS = _rows("x,y", [f"{'' if i % 3 else i},{i % 2}" for i in range(30)])
_IDS = _rows("id,x,y", [f"user{i},{i},{i % 2}" for i in range(30)])
_STRAY = _rows("x,y", [f"{'?' if i == 4 else i},{i % 2}" for i in range(30)])
_RARE = _rows("x,y", [f"{i},{'rare' if i == 0 else i % 2}" for i in range(30)])
_PRICE = _rows("x,price", [f"{i},{i % 3 + 0.5}" for i in range(30)])

BAD_CSV = [
    ("missing file", None, "y", "data.csv_path 'user.csv': no such file at"),
    ("empty file", "", "y", "user.csv: the file is empty; give a header and at least one row"),
    ("header only", "x,y\n", "y", "user.csv: has a header but no rows"),
    ("no target", "a,b\n1,2\n3,4\n", "y", "user.csv: no target column 'y'; set data.target"),
    ("semicolons", "a;y\n1;2\n", "y", "the file seems not to be comma-separated"),
    ("ragged", "a,y\n1,0\n2,0,5,6\n", "y", "user.csv: not a readable CSV (Error tokenizing"),
    ("only target", "y\n0\n1\n", "y", "only the target column 'y'; add feature columns"),
    ("single class", "a,y\n1,0\n2,0\n3,0\n", "y", "holds a single value (0): nothing to learn"),
    ("rare class", _RARE, "y", "class 'rare' of 'y' has only 1 row(s); every class needs"),
    (
        "few fractions",
        _PRICE,
        "price",
        "target column 'price' holds 3 distinct numbers with fractions, fewer than the 5 a"
        " regression target needs (data.task: auto took the fractions for a quantity); set"
        " data.task: classification to treat them as classes",
    ),
    ("too few rows", "a,y\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n", "y", "cannot split 6 rows"),
    ("mostly gaps", _MANY_GAPS, "y", "20 of 30 rows have missing values (in x); too many"),
    ("ids", _IDS, "y", "column 'id' has 30 distinct text values, too many to one-hot"),
    ("stray text", _STRAY, "y", "column 'x' holds numbers but also '?'"),
    ("infinite", "x,y\n1,0\ninf,1\n", "y", "column 'x' has infinite values"),
]


@pytest.mark.parametrize(
    ("content", "target", "expected"),
    [case[1:] for case in BAD_CSV],
    ids=[case[0] for case in BAD_CSV],
)
def test_bad_user_csv_is_named_in_one_line(tmp_path: Path, content, target, expected):
    if content is not None:
        (_raw(tmp_path) / "user.csv").write_text(content)
    with pytest.raises(DataError) as caught:
        prepare(_csv_params(tmp_path, "user.csv", target), tmp_path / "prepared")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
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


def test_interrupted_write_leaves_no_complete_looking_split_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_yaml(tmp_path / "params.yaml", tiny_params())
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    before = (tmp_path / "prepared" / "meta.json").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    # The earlier, complete folder is untouched; the half-written one is only a staging dir.
    assert (tmp_path / "prepared" / "meta.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "params.yaml",
        "prepared",
        "prepared.partial",
    ]

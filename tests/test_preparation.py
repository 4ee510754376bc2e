"""What `prepare` learned, saved (data/prepared/preparation.json), and applied by one
implementation: a user's raw rows, through it, are the prepared splits bit for bit; rows it
cannot take honestly are refused in one line naming the column and the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pipeline.core.contracts import read_meta
from pipeline.core.errors import DataError
from pipeline.core.preparation import (
    BOOLEAN,
    CATEGORY,
    NUMBER,
    Scaling,
    check_columns,
    read_preparation,
)
from pipeline.datasets import prepared
from pipeline.prepare import prepare
from tests.support.params import tiny_params, write_yaml
from tests.support.tables import (
    ID_COLUMN,
    TARGET,
    mixed_params,
    mixed_table,
    split_rows,
    write_table,
)


@pytest.mark.parametrize("method", ["minmax", "standard"])
def test_the_saved_scaling_is_the_fitted_scalers_transform_bit_for_bit(method):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(300, 12)) * 7 + 3).astype(np.float32)
    x[:, 0] = 5.0  # a constant feature: the scalers' zero-range case
    scaler = {"minmax": MinMaxScaler, "standard": StandardScaler}[method]().fit(x[:200])
    saved = json.loads(json.dumps(Scaling.of_fitted(scaler, method).as_json()))
    applied = Scaling.of_json(saved).applied(x)
    expected = scaler.transform(x).astype(np.float32)
    assert applied.dtype == np.float32
    assert np.array_equal(applied.view(np.uint32), expected.view(np.uint32))


def _prepared_table(tmp_path, frame, **data_keys):
    write_table(tmp_path, frame, "mixed.csv")
    write_yaml(tmp_path / "params.yaml", mixed_params("mixed.csv", **data_keys))
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    return read_preparation(tmp_path / "prepared")


@pytest.mark.parametrize("scaling", ["minmax", "standard"])
def test_raw_rows_through_the_preparation_are_the_prepared_splits(tmp_path, scaling):
    frame = mixed_table()
    preparation = _prepared_table(tmp_path, frame, scaling=scaling)
    kinds = {c.name: (c.kind, c.categories) for c in preparation.columns}
    assert kinds == {
        "width": (NUMBER, ()),
        "colour": (CATEGORY, ("blue", "green", "red")),
        "count": (NUMBER, ()),
        "wet": (BOOLEAN, ()),
    }
    assert preparation.ignored_columns == (ID_COLUMN,) and preparation.target_column == TARGET
    assert preparation.labels == ("high", "low", "mid")
    assert preparation.feature_names == [
        "width", "colour=blue", "colour=green", "colour=red", "count", "wet",
    ]  # fmt: skip
    # The user's columns in another order, the label and the id still in: all taken by name.
    raw = frame[["wet", TARGET, "count", ID_COLUMN, "colour", "width"]]
    for name, rows in split_rows(tmp_path, len(frame)).items():
        held = prepared.read_split(tmp_path / "prepared", name).features
        taken = preparation.model_input(raw.iloc[rows])
        assert np.array_equal(taken.view(np.uint32), held.view(np.uint32)), name


def test_a_regression_tables_preparation_holds_the_targets_statistics(tmp_path):
    preparation = _prepared_table(tmp_path, mixed_table(regression=True))
    meta = read_meta(tmp_path / "prepared")
    assert preparation.task == "regression" and preparation.labels == ()
    assert (preparation.target_mean, preparation.target_std) == (meta.target_mean, meta.target_std)
    standardised = np.array([-1.0, 0.0, 2.0])
    assert np.array_equal(
        preparation.in_target_units(standardised), meta.in_target_units(standardised)
    )


def test_the_digits_preparation_takes_arrays_of_the_examples_shape(tmp_path):
    write_yaml(tmp_path / "params.yaml", tiny_params())
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    preparation = read_preparation(tmp_path / "prepared")
    assert preparation.labels == tuple(range(10)) and preparation.input_shape == (64,)
    from sklearn.datasets import load_digits

    images = load_digits().images[:5]  # 8x8 each: taken flattened, as prepare takes them
    assert preparation.model_input(images).shape == (5, 64)
    with pytest.raises(DataError, match=r"examples of shape \(64,\)"):
        preparation.model_input(np.zeros((2, 63)))


BAD_ROWS = {
    "missing column": (
        lambda f: f.drop(columns=["count"]), "column 'count' is missing"),
    "unknown column": (
        lambda f: f.assign(height=1.0), "column 'height' was not in the training table"),
    "text in a number column": (
        lambda f: f.assign(width=["wide", *list(f["width"][1:])]),
        "column 'width' holds 'wide', not a number"),
    "empty cell": (
        lambda f: f.assign(width=[np.nan, *list(f["width"][1:])]),
        "column 'width' has an empty cell (row 1)"),
    "unseen category": (
        lambda f: f.assign(colour=["purple", *list(f["colour"][1:])]),
        "column 'colour' has 'purple', a category training never saw; use one of blue, green"),
    "no rows": (lambda f: f.iloc[:0], "no rows to predict"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_ROWS)
def test_rows_the_preparation_cannot_take_are_refused_in_one_line(tmp_path, case):
    frame = mixed_table()
    preparation = _prepared_table(tmp_path, frame)
    change, message = BAD_ROWS[case]
    rows = change(frame.drop(columns=[TARGET]).iloc[:6].reset_index(drop=True))
    with pytest.raises(DataError) as caught:
        check_columns(rows, preparation)
        preparation.model_input(rows)
    assert message in str(caught.value) and "\n" not in str(caught.value)

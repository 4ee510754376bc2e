"""Regression targets in `prepare`: the task a target asks for, quantile-bin stratification of
every draw (splits, train_subset, the nested pool, the folds), the target standardised with
the training rows' statistics, `data.drop_columns`, and every bad input refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from pipeline.config import load_config
from pipeline.core import contracts, runner
from pipeline.core.errors import ConfigError, DataError
from pipeline.datasets import folds, prepared, subsets
from pipeline.datasets.targets import MAX_CATEGORIES, MIN_REGRESSION_VALUES
from pipeline.prepare import main, prepare
from tests.support.params import tiny_params, write_yaml

# A float32 label z holds (y - mean) / std to half an ulp, 2**-24 of |z|; un-standardised
# in float64 that is 2**-24 * |y - mean|, plus float64 rounding (a few eps of |y| + |mean|).
FLOAT32_HALF_ULP = 2.0**-24


def _table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A skewed quantity (log-normal, in the thousands) that depends on two features, an id
    and a free-text column a user would leave out, and a column that is mostly empty."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame.insert(0, "id", [f"row{i}" for i in range(n)])
    frame["note"] = [f"free text {i}" for i in range(n)]
    frame["sparse"] = np.where(np.arange(n) % 10 == 0, 1.0, np.nan)
    frame["price"] = np.round(1000 * np.exp(0.5 * frame["a"] + 0.3 * rng.normal(size=n)), 2)
    frame["kind"] = np.where(frame["b"] > 0, "p", "q")
    return frame


def _prepare(root: Path, frame: pd.DataFrame | None, **data_keys) -> Path:
    """Prepare `frame` (written to data/raw/t.csv) with these data keys; the prepared folder."""
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    if frame is not None:
        frame.to_csv(root / "data" / "raw" / "t.csv", index=False)
    params = tiny_params()
    params["data"].update({"source": "csv", "csv_path": "data/raw/t.csv", **data_keys})
    write_yaml(root / "params.yaml", params)
    prepare(root / "params.yaml", root / "prepared")
    return root / "prepared"


_DROPPED = ["id", "note", "sparse"]


def _splits(folder: Path) -> dict[str, prepared.Split]:
    return {name: prepared.read_split(folder, name) for name in prepared.SPLITS}


def test_a_quantity_is_prepared_for_regression_with_its_target_standardised(tmp_path):
    frame = _table()
    frame.loc[7, "price"] = np.nan  # a row without its target is dropped, and said
    folder = _prepare(tmp_path, frame, target_column="price", drop_columns=_DROPPED)
    frame = frame.dropna(subset=["price"])
    meta = contracts.read_meta(folder)
    written = json.loads((folder / contracts.META_FILE).read_text())
    assert written["task"] == "regression" and written["class_names"] == []
    assert (written["incomplete_rows_dropped"], written["rows_read"]) == (1, 300)
    assert written["target_mean"] == meta.target_mean and written["target_std"] > 0
    assert (meta.n_outputs, meta.n_features, meta.train_labels_flipped) == (1, 5, 0)
    splits = _splits(folder)
    train = splits["train"].labels.astype(np.float64)
    assert splits["train"].labels.dtype == np.float32
    # Standardised with the training rows' mean and population std.
    assert abs(train.mean()) < 1e-6 and abs(train.std() - 1.0) < 1e-6
    # Un-standardised, every row's target comes back to float32 precision: the three splits
    # are the table's rows, so their sorted values are the table's sorted targets.
    # (in float64: NumPy keeps a float32 array float32 when multiplied by a Python float)
    stored = np.concatenate([s.labels for s in splits.values()]).astype(np.float64)
    back = np.sort(meta.in_target_units(stored))
    raw = np.sort(frame["price"].to_numpy())
    eps = np.finfo(np.float64).eps
    tolerance = FLOAT32_HALF_ULP * np.abs(raw - meta.target_mean) + 2 * eps * (
        np.abs(raw) + abs(meta.target_mean)
    )
    assert np.all(np.abs(back - raw) <= tolerance)
    assert meta.target_std == pytest.approx(np.std(meta.in_target_units(train)), rel=1e-6)
    assert not pd.read_parquet(folder / "train.parquet")[prepared.FLIPPED].any()


def test_splits_keep_the_targets_deciles_in_proportion(tmp_path):
    frame = _table()
    folder = _prepare(tmp_path, frame, target_column="price", drop_columns=_DROPPED)
    meta = contracts.read_meta(folder)
    deciles = np.quantile(frame["price"], np.linspace(0, 1, 11)[1:-1])

    def worst_decile(target: np.ndarray) -> float:
        """The largest miss, in rows, of a decile's share of `target`."""
        counts = np.bincount(np.searchsorted(deciles, target, side="right"), minlength=10)
        return float(np.abs(counts - len(target) / 10).max())

    for name, split in _splits(folder).items():
        target = meta.in_target_units(split.labels.astype(np.float64))
        assert worst_decile(target) <= 1.0 + 1e-9, name  # within one row of a tenth
    # The same draws unstratified miss by several rows: what the bins are for.
    rest, test = train_test_split(frame["price"].to_numpy(), test_size=0.25, random_state=42)
    train, val = train_test_split(rest, test_size=0.15 / 0.75, random_state=42)
    assert [worst_decile(t) for t in (train, val, test)] == [5.0, 2.5, 5.5]


def test_train_subset_and_the_pools_are_stratified_and_standardised_alike(tmp_path):
    frame = _table(n=600)
    folder = _prepare(
        tmp_path, frame, target_column="price", drop_columns=_DROPPED, train_subset=100
    )
    meta = contracts.read_meta(folder)
    train = prepared.read_split(folder, "train").labels.astype(np.float64)
    assert len(train) == 100 and abs(train.mean()) < 1e-6  # the statistics are the subset's
    pool = subsets.read_pool(folder).labels.astype(np.float64)
    assert meta.pool_rows == len(pool) > 100
    # Pool, validation and test un-standardised are the table's targets again.
    val, test = (prepared.read_split(folder, s).labels for s in ("val", "test"))
    back = np.sort(meta.in_target_units(np.concatenate([pool, val, test])))
    assert np.allclose(back, np.sort(frame["price"]), rtol=1e-6, atol=0)
    # Every prefix of the pool holds each of its quantile bins in proportion (±1 row).
    bins = prepared.quantile_bins(pool, prepared.MAX_QUANTILE_BINS)
    for n in (20, 100, 250, len(pool)):
        counts = np.bincount(bins[:n], minlength=10)
        assert np.abs(counts - n / 10).max() <= 1.0 + 1e-9, n
    # The subset spans the target like the pool it was drawn from.
    pool_deciles = np.quantile(pool, np.linspace(0, 1, 11)[1:-1])
    counts = np.bincount(np.searchsorted(pool_deciles, train, side="right"), minlength=10)
    assert np.abs(counts - 10).max() <= 2, counts
    # The CV pool: training then validation rows, standardised with the same statistics.
    cv = folds.read_cv_pool(folder).labels
    assert np.array_equal(cv, np.concatenate([prepared.read_split(folder, "train").labels, val]))


def test_folds_of_a_regression_pool_hold_every_quantile_bin():
    target = np.random.default_rng(3).lognormal(size=203).astype(np.float32)
    k = 5
    fold = folds.fold_of_rows(target, k, seed=42)
    sizes = np.bincount(fold, minlength=k)
    assert sizes.max() - sizes.min() <= 1
    bins = prepared.quantile_bins(target, prepared.MAX_QUANTILE_BINS)
    for b in range(prepared.MAX_QUANTILE_BINS):
        per_fold = np.bincount(fold[bins == b], minlength=k)
        assert per_fold.max() - per_fold.min() <= 1, b
    assert np.array_equal(fold, folds.fold_of_rows(target, k, seed=42))
    # No label noise on a quantity: fold and refit sets keep the target as it is.
    pool = prepared.Split(np.zeros((len(target), 2), np.float32), target)
    train, held_out, held_rows = folds.fold_sets(pool, k, 0, 0, 0.0, seed=42)
    assert np.array_equal(held_out.labels, target[held_rows])
    assert np.array_equal(np.sort(train.labels), np.sort(np.delete(target, held_rows)))
    assert np.array_equal(folds.refit_set(pool, 0, 0.0, seed=42).labels, target)
    with pytest.raises(DataError, match=r"choose.folds = 300: .* only 203 rows"):
        folds.check_folds(target, 300, ())


def test_an_entry_of_its_own_size_trains_on_the_pools_prefix_as_is(tmp_path):
    folder = _prepare(tmp_path, _table(), target_column="price", drop_columns=_DROPPED)
    split = subsets.training_split(folder, (50, 0.0), n_classes=0, seed=42)
    assert np.array_equal(split.labels, subsets.read_pool(folder).labels[:50])


def test_quantile_bins_are_equal_runs_by_rank_also_with_ties():
    values = np.array([5.0, 1.0, 1.0, 1.0, 1.0, 9.0, 2.0, 1.0, 3.0, 7.0])
    bins = prepared.quantile_bins(values, 3)
    assert sorted(np.bincount(bins)) == [3, 3, 4]
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(bins[order]) >= 0)  # bins follow the values' order
    labels = np.array([2, 0, 1])
    assert prepared.strata(labels, 2) is labels  # classes stratify as they are


@pytest.mark.parametrize(
    ("target", "task", "expected"),
    [
        (np.arange(200) % MAX_CATEGORIES, "auto", "classification"),
        (np.arange(200) % (MAX_CATEGORIES + 1), "auto", "regression"),
        (np.round(np.linspace(1, 9, 200), 1), "auto", "regression"),
        (np.arange(200) % (MAX_CATEGORIES + 1), "classification", "classification"),
        (np.arange(200) % MIN_REGRESSION_VALUES, "regression", "regression"),
    ],
    ids=["20 integers", "21 integers", "fractions", "declared classes", "declared, 5 values"],
)
def test_the_task_is_the_targets_unless_declared(tmp_path, target, task, expected):
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=200), "y": target})
    meta = contracts.read_meta(_prepare(tmp_path, frame, target_column="y", task=task))
    assert meta.task == expected
    assert meta.n_classes == (len(np.unique(target)) if expected == "classification" else 0)


def test_an_npz_is_regression_only_when_declared(tmp_path):
    (tmp_path / "data" / "raw").mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    target = x @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=200)
    np.savez(tmp_path / "data" / "raw" / "a.npz", x=x, y=target)
    params = tiny_params()
    params["data"].update(source="npz", npz_path="data/raw/a.npz", task="regression")
    write_yaml(tmp_path / "params.yaml", params)
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    meta = contracts.read_meta(tmp_path / "prepared")
    assert meta.is_regression and meta.input_shape == (3,)
    params["data"]["task"] = "auto"  # floats as classes: 200 classes of one row each
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(DataError, match=r"a.npz: label '.*' has only 1 example\(s\)"):
        prepare(tmp_path / "params.yaml", tmp_path / "prepared")


@pytest.mark.parametrize("target", ["price", "kind"])
def test_drop_columns_leaves_columns_out_for_both_tasks(tmp_path, caplog, target):
    frame = _table()
    with caplog.at_level("INFO", logger="pipeline.datasets"):
        folder = _prepare(tmp_path, frame, target_column=target, drop_columns=_DROPPED)
    meta = contracts.read_meta(folder)
    assert meta.is_regression == (target == "price")
    # a, b, c and the other target column: kind one-hot (2 columns) or price.
    assert meta.n_features == (5 if target == "price" else 4)
    assert sum(meta.rows.values()) == len(frame)  # the sparse column dropped no rows
    assert "left out column(s) id, note, sparse (data.drop_columns)" in caplog.text


def _bad(root: Path, frame: pd.DataFrame, **data_keys) -> str:
    with pytest.raises((DataError, ConfigError)) as caught:
        _prepare(root, frame, **data_keys)
    message = str(caught.value)
    assert "\n" not in message
    assert not (root / "prepared").exists()
    return message


_TEXT = pd.DataFrame({"x": range(40), "y": ["low", "mid", "high", "top"] * 10})
_FLAGS = pd.DataFrame({"x": range(40), "y": [True, False] * 20})
_FOUR = pd.DataFrame({"x": range(40), "y": [1, 2, 3, 4] * 10})
_CONSTANT = pd.DataFrame({"x": range(40), "y": [2.5] * 40})
_NOISE = "the target is a quantity (regression), and moving a label to another class"

BAD = [
    ("not a column", _table(), {"target_column": "price", "drop_columns": ["id", "nope"]},
     "t.csv: data.drop_columns has 'nope', which is not a column; remove it or use one of id,"),
    ("the target", _table(), {"target_column": "price", "drop_columns": ["price"]},
     "t.csv: data.drop_columns has the target column 'price'; remove it from data.drop_columns"),
    ("text", _TEXT, {"target_column": "y", "task": "regression"},
     "t.csv: data.task = 'regression' but target column 'y' holds text (e.g. 'low'), not a"
     " quantity; set data.task: classification, or give a target column of numbers"),
    ("booleans", _FLAGS, {"target_column": "y", "task": "regression"},
     "target column 'y' holds booleans (e.g. 'True'), not a quantity"),
    ("four values", _FOUR, {"target_column": "y", "task": "regression"},
     "t.csv: target column 'y' holds 4 distinct numbers, fewer than the 5 a regression target"
     " needs (data.task = 'regression'); set data.task: classification to treat them as"
     " classes"),
    ("constant", _CONSTANT, {"target_column": "y"},
     "t.csv: target column 'y' is constant (2.5 in every row): there is nothing to predict;"
     " choose a target that varies (data.target_column"),
    ("constant declared", _CONSTANT, {"target_column": "y", "task": "regression"},
     "target column 'y' is constant (2.5 in every row)"),
    ("data noise", _table(), {"target_column": "price", "drop_columns": _DROPPED,
                              "label_noise": 0.1},
     f"data.label_noise = 0.1: {_NOISE} has no meaning there; set data.label_noise: null"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "keys", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_bad_regression_input_is_one_line_and_writes_nothing(tmp_path, frame, keys, expected):
    assert expected in _bad(tmp_path, frame, **keys)


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        ("sweep", {"noisy": {"l2": 0.0, "label_noise": 0.2}},
         f"sweep.noisy.label_noise = 0.2: {_NOISE} has no meaning there; remove it from the"
         " entry"),
        ("grid", {"rates": [0.0, 0.01], "label_noise": [None, 0.1]},
         f"grid.label_noise = [null, 0.1]: {_NOISE} has no meaning there; set"
         " grid.label_noise: [null]"),
    ],
)  # fmt: skip
def test_label_noise_anywhere_is_refused_on_a_regression_target(tmp_path, section, value, expected):
    (tmp_path / "data" / "raw").mkdir(parents=True)
    _table().to_csv(tmp_path / "data" / "raw" / "t.csv", index=False)
    params = tiny_params()
    params["data"].update(source="csv", csv_path="data/raw/t.csv", target_column="price")
    params["data"]["drop_columns"] = _DROPPED
    params[section] = {**params.get(section, {}), **value}
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError) as caught:
        prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    params["data"]["target_column"] = "kind"  # classes: the same noise is fine
    write_yaml(tmp_path / "params.yaml", params)
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"task": "regression"},
         "data.task = 'regression' with data.source: digits: the digits are classes (0 to 9);"
         " use data.task: auto or classification"),
        ({"task": "regression", "source": "images", "image_dir": "data/raw/pets"},
         "data.task = 'regression' with data.source: images: an image folder's labels are its"
         " class folders"),
        ({"drop_columns": ["id"], "source": "npz", "npz_path": "data/raw/a.npz"},
         "data.drop_columns is set but data.source is 'npz': it leaves out a CSV's columns;"
         " set data.drop_columns: []"),
        ({"task": "ordinal"},
         "data.task = \"ordinal\": must be one of 'auto', 'classification' or 'regression'"),
    ],
)  # fmt: skip
def test_task_and_drop_columns_for_the_wrong_source_are_one_line(tmp_path, data, expected):
    params = tiny_params()
    params["data"].update(data)
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "params.yaml")
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_refused_regression_exits_non_zero_and_keeps_the_earlier_splits(tmp_path, capsys):
    folder = _prepare(tmp_path, _table(), target_column="price", drop_columns=_DROPPED)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    _CONSTANT.to_csv(tmp_path / "data" / "raw" / "t.csv", index=False)
    params = tiny_params()
    params["data"].update(source="csv", csv_path="data/raw/t.csv", target_column="y")
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(SystemExit) as exit_info:
        main(["--params", str(tmp_path / "params.yaml"), "--out", str(folder)])
    assert exit_info.value.code == runner.EXIT_BAD_INPUT
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[-1].startswith("error: prepare: t.csv: target column 'y' is constant")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_constant_training_target_cannot_be_standardised():
    from pipeline.prepare import _target_scaling

    with pytest.raises(DataError, match=r"the 4 training rows all have the target 3: it cannot"):
        _target_scaling(np.full(4, 3.0))
    assert _target_scaling(np.array([1.0, 3.0])) == prepared.TargetScaling(2.0, 1.0)


def test_the_bundled_diabetes_table_is_a_regression_source(tmp_path: Path):
    params = tiny_params()
    params["data"]["source"] = "diabetes"
    write_yaml(tmp_path / "params.yaml", params)
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    meta = contracts.read_meta(tmp_path / "prepared")
    assert meta.task == "regression" and meta.n_features == 10 and meta.class_names == ()
    assert sum(meta.rows.values()) == 442
    train = prepared.read_split(tmp_path / "prepared", "train")
    # The target in its own units (25 to 346) after un-standardising, not sklearn's scaled one.
    in_units = meta.in_target_units(train.labels.astype(np.float64))
    assert in_units.min() > 20 and in_units.max() < 350
    params["data"]["task"] = "classification"
    write_yaml(tmp_path / "params.yaml", params)
    refusal = r"data\.task = 'classification' with data\.source: diabetes"
    with pytest.raises(ConfigError, match=refusal):
        load_config(tmp_path / "params.yaml")

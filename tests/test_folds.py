"""k-fold cross-validation sets: disjoint, stratified folds covering the pooled rows, label
noise on training rows only, and the bad settings refused before any training."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.core.errors import ConfigError, DataError
from pipeline.datasets import folds, prepared
from tests.support.params import tiny_params, write_yaml

LABELS = np.repeat([0, 1, 2], [30, 21, 9])


def test_folds_are_disjoint_stratified_cover_every_row_and_repeat_by_seed():
    k = 4
    fold = folds.fold_of_rows(LABELS, k, seed=42)
    assert set(fold) == set(range(k))  # every row in exactly one fold
    sizes = np.bincount(fold, minlength=k)
    assert sizes.max() - sizes.min() <= 1
    for cls in range(3):
        per_fold = np.bincount(fold[cls == LABELS], minlength=k)
        assert per_fold.max() - per_fold.min() <= 1, cls
    assert np.array_equal(fold, folds.fold_of_rows(LABELS, k, seed=42))
    assert not np.array_equal(fold, folds.fold_of_rows(LABELS, k, seed=43))


def test_a_fold_trains_on_the_others_with_noise_and_is_scored_on_clean_labels():
    rng = np.random.default_rng(0)
    pool = prepared.Split(rng.random((len(LABELS), 5), dtype=np.float32), LABELS)
    k, noise = 3, 0.2
    held_rows_of_all = []
    for i in range(k):
        train, held_out, held_rows = folds.fold_sets(pool, k, i, 3, noise, seed=42)
        held_rows_of_all.append(held_rows)
        assert len(train.labels) + len(held_out.labels) == len(LABELS)
        assert np.array_equal(held_out.labels, LABELS[held_rows])  # clean
        assert np.array_equal(held_out.features, pool.features[held_rows])
        train_rows = np.setdiff1d(np.arange(len(LABELS)), held_rows)
        assert np.array_equal(train.features, pool.features[train_rows])
        flipped = train.labels != LABELS[train_rows]
        assert flipped.sum() == round(noise * len(train_rows))
    # The held-out folds partition the pool.
    assert np.array_equal(np.sort(np.concatenate(held_rows_of_all)), np.arange(len(LABELS)))


def test_more_folds_than_a_class_has_rows_is_one_line():
    with pytest.raises(DataError, match=r"choose.folds = 10: class 'c' has only 9 rows"):
        folds.check_folds(LABELS, 10, ["a", "b", "c"])
    folds.check_folds(LABELS, 9, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("choose", "message"),
    [
        ({"folds": 1}, "choose.folds = 1: must be null"),
        ({"folds": 2.5}, "choose.folds = 2.5: must be a whole number"),
        ({"rule": "median"}, "choose.rule = \"median\": must be one of 'min' or 'one_se'"),
    ],
)
def test_bad_choose_settings_are_one_line(tmp_path, choose, message):
    params = tiny_params()
    params["choose"] = choose
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as error:
        load_config(tmp_path / "params.yaml")
    assert "\n" not in str(error.value)


def test_folds_with_an_entry_of_its_own_training_set_say_what_is_supported(tmp_path):
    params = tiny_params()
    params["choose"] = {"folds": 3}
    params["sweep"]["small"] = {"l2": 0.0, "train_size": 40}
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match=r"sweep\.small\.train_size: folds are cut from"):
        load_config(tmp_path / "params.yaml")


def test_prepare_refuses_more_folds_than_the_smallest_class_and_keeps_the_splits(tmp_path):
    from pipeline.prepare import main

    params = tiny_params()
    write_yaml(tmp_path / "params.yaml", params)
    out = tmp_path / "prepared"
    main(["--params", str(tmp_path / "params.yaml"), "--out", str(out)])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    pool = folds.read_cv_pool(out)
    smallest = int(np.bincount(pool.labels).min())
    assert len(pool.labels) == sum(
        len(prepared.read_split(out, s).labels) for s in ("train", "val")
    )
    params["choose"] = {"folds": smallest + 1}
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(SystemExit) as exit_info:
        main(["--params", str(tmp_path / "params.yaml"), "--out", str(out)])
    assert exit_info.value.code != 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

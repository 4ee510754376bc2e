"""Nested training sets: every prefix of the pool is stratified and keeps the label-noise
share, and a larger subset contains the smaller one with the same wrong labels."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config.entries import EntrySpec
from pipeline.config.schema import DataConfig, DigitsDemo
from pipeline.core.errors import DataError
from pipeline.datasets import subsets


@pytest.fixture
def labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 10, size=1000)


def test_every_prefix_holds_each_class_in_proportion(labels):
    order = subsets.nested_order(labels, seed=42)
    assert sorted(order) == list(range(len(labels)))
    shares = np.bincount(labels, minlength=10) / len(labels)
    for n in (20, 50, 100, 333, 1000):
        counts = np.bincount(labels[order[:n]], minlength=10)
        assert np.all(np.abs(counts - shares * n) <= 1.0 + 1e-9), n


def test_every_prefix_keeps_the_noise_share_and_the_same_wrong_labels(labels):
    ordered = labels[subsets.nested_order(labels, seed=42)]
    noisy, flipped = subsets.noisy_labels(ordered, 10, 0.2, seed=42)
    for n in (7, 50, 333, 1000):
        assert flipped[:n].sum() == np.floor(0.2 * n + 0.5)
    assert np.all(noisy[flipped] != ordered[flipped])
    assert np.all(noisy[~flipped] == ordered[~flipped])
    # Another share flips other rows; a row flipped under both gets the same wrong class.
    fewer, fewer_flipped = subsets.noisy_labels(ordered, 10, 0.1, seed=42)
    assert fewer_flipped.sum() == 100
    both = fewer_flipped & flipped
    assert np.all(fewer[both] == noisy[both])
    # Flipped rows are spread over the classes, not stuck to a few.
    assert len(np.unique(ordered[flipped])) == 10


def test_an_entry_picks_its_rows_and_noise_and_too_many_rows_are_refused():
    demo = DigitsDemo(train_subset=300, label_noise=0.2)
    cfg = DataConfig(source="digits", test_fraction=0.25, val_fraction=0.15, digits=demo)
    plain = EntrySpec("plain", (("output", 0.0),), 0.0)
    assert subsets.training_set(plain, cfg, 1000) is None
    assert subsets.training_set(EntrySpec("a", (), 0.0, train_size=50), cfg, 1000) == (50, 0.2)
    assert subsets.training_set(EntrySpec("b", (), 0.0, label_noise=0.0), cfg, 1000) == (300, 0)
    with pytest.raises(DataError, match=r"sweep.c.train_size = 2000: the training pool has 1000"):
        subsets.training_set(EntrySpec("c", (), 0.0, train_size=2000), cfg, 1000)

"""The store keeps a model's bits exactly, never hands out a damaged one, survives a store it
cannot write, keeps one copy when two writers race, and stays within its size bound."""

from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.model_store import lookup
from pipeline.model_store.lookup import Lookup, why_retrained
from pipeline.model_store.store import WEIGHTS, ModelStore, StoredModel

KEY = "ab" + "0" * 62


def model(seed: int = 0) -> StoredModel:
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((4, 3)).astype("float32"), np.zeros(3, "float32")]
    weights[0][0, 0] = np.float32(1e-45)  # a subnormal survives too
    ingredients = {"settings": {"a": seed}, "code": "c", "environment": {"keras": "3"}}
    return StoredModel(weights, b"epoch,loss\r\n1,0.5\r\n", None, {"run_id": "r1"}, ingredients)


def test_a_stored_model_comes_back_bit_for_bit(tmp_path: Path):
    store = ModelStore(tmp_path / "store")
    assert store.get(KEY) is None
    store.put(KEY, model())
    back = store.get(KEY)
    for stored, original in zip(back.weights, model().weights, strict=True):
        assert stored.dtype == original.dtype and stored.tobytes() == original.tobytes()
    assert back.history == model().history and back.trained_by == {"run_id": "r1"}
    assert not store.problems
    assert list((tmp_path / "store" / ".incoming").iterdir()) == []  # no private folder left


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_a_damaged_model_is_never_loaded_and_is_removed(tmp_path: Path, damage: str):
    store = ModelStore(tmp_path)
    store.put(KEY, model())
    folder = store.folder(KEY)
    weights = folder / WEIGHTS
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:20])
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-40] ^= 1
        weights.write_bytes(bytes(data))
    elif damage == "delete":
        weights.unlink()
    else:
        (folder / "manifest.json").write_text("{")
    assert store.get(KEY) is None
    assert not folder.exists()
    assert len(store.problems) == 1 and "damaged" in store.problems[0]


def test_a_store_that_cannot_be_written_costs_a_warning_not_the_sweep(tmp_path: Path, caplog):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    store = ModelStore(blocked / "store")  # every mkdir fails, as on a full or read-only disk
    store.put(KEY, model())
    assert store.get(KEY) is None
    with caplog.at_level(logging.WARNING):
        store.warn()
    assert len(caplog.records) == 1 and "cannot write the model store" in caplog.text
    assert blocked.read_text() == "not a folder"


def test_a_deleted_store_is_made_again(tmp_path: Path):
    store = ModelStore(tmp_path / "store")
    store.put(KEY, model())
    for path in sorted((tmp_path / "store").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (tmp_path / "store").rmdir()
    store.put(KEY, model())
    assert store.get(KEY) is not None


def _put(root: str, start) -> None:
    start.wait()
    ModelStore(Path(root)).put(KEY, model())


def test_two_writers_of_one_key_both_succeed_and_one_copy_is_kept(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [context.Process(target=_put, args=(str(tmp_path), start)) for _ in range(4)]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    assert ModelStore(tmp_path).entries() == [ModelStore(tmp_path).folder(KEY)]
    assert ModelStore(tmp_path).get(KEY) is not None
    assert list((tmp_path / ".incoming").iterdir()) == []


def test_other_bits_under_one_key_are_said_and_replace_the_stored_model(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.put(KEY, model(0))
    store.put(KEY, model(0))
    assert not store.problems
    store.put(KEY, model(1))
    assert "misses an input" in store.problems[0]
    assert store.get(KEY).weights[0].tobytes() == model(1).weights[0].tobytes()


def test_the_least_recently_used_models_go_first_and_the_ones_in_use_stay(tmp_path: Path):
    store = ModelStore(tmp_path)
    keys = [f"{i:02d}" + "0" * 62 for i in range(4)]
    for age, key in enumerate(keys):
        store.put(key, model())
        stamp = 1_000_000 + age
        os.utime(store.folder(key), (stamp, stamp))
    one = store.size_of(store.folder(keys[0]))
    store.written.clear()  # as a later stage that wrote nothing
    removed = store.bound(2 * one, keep={keys[0]})
    assert [folder.name for folder in removed] == keys[1:3]
    assert {folder.name for folder in store.entries()} == {keys[0], keys[3]}


def test_why_a_stored_model_of_the_same_settings_is_not_reused(tmp_path: Path):
    store = ModelStore(tmp_path)
    before = model().ingredients
    store.put("cd" + "1" * 62, model())
    now = {**before, "environment": {"keras": "4"}, "code": "d"}
    found = why_retrained(store, Lookup({"l2_0": "ef" + "2" * 62}, {"l2_0": now}))
    assert found == [
        "1 model(s) trained before retrain: the lab's training code changed; keras 3 -> 4"
    ]


@pytest.mark.parametrize(
    ("command", "forced"),
    [
        (["python", "/venv/bin/dvc", "repro", "-f"], True),
        (["dvc", "repro", "--force", "train"], True),
        (["dvc", "repro", "-fs", "train"], True),
        (["dvc", "exp", "run", "-f", "-S", "sweep.a.l2=1"], True),
        (["dvc", "repro"], False),
        (["dvc", "repro", "-s", "train"], False),
        (["dvc", "exp", "run", "-S", "sweep.a.l2=1"], False),
        (["python", "-m", "pytest", "-f"], False),
    ],
)
def test_a_forced_dvc_command_is_told_apart(command: list[str], forced: bool):
    assert lookup._is_forced_dvc(command) is forced


def test_a_model_the_stage_wrote_is_never_evicted_by_its_own_bound(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.put(KEY, model())
    assert store.bound(0, keep=set()) == []
    assert store.get(KEY) is not None

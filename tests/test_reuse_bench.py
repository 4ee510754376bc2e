"""The model store benchmark's own logic (benchmarks/reuse.py): its edits through the lab's
validation, the counts it reads from the stage's log line, its verdicts. No training."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from ruamel.yaml import YAML

from benchmarks import reuse_part, reuse_table
from benchmarks.compute_part import layer_grid_params
from pipeline.config import load_config, resolve_towers
from pipeline.model_store import Lookup
from pipeline.train import sweep_line
from tests.support.params import ROOT, write_yaml


def _default_params() -> dict:
    return YAML(typ="safe").load((ROOT / "params.yaml").read_text())


def _tower_names(tmp_path: Path, params: dict) -> set[str]:
    write_yaml(tmp_path / "params.yaml", params)
    return {t.name for t in resolve_towers(load_config(tmp_path / "params.yaml"))}


def test_the_added_entry_is_one_new_model_and_alone_it_is_the_whole_sweep(tmp_path):
    params = _default_params()
    before = _tower_names(tmp_path, params)
    after = _tower_names(tmp_path, reuse_part.with_entry(params))
    assert before < after and len(after - before) == 1
    assert _tower_names(tmp_path, reuse_part.only_entry(params)) == after - before
    assert len(params["sweep"]) == len(_default_params()["sweep"])  # the input is left alone


def test_the_added_grid_rate_is_its_four_entries_times_three_seeds(tmp_path):
    grid = layer_grid_params(_default_params())
    before = _tower_names(tmp_path, grid)
    after = _tower_names(tmp_path, reuse_part.with_grid_rate(grid))
    assert (len(before), len(after)) == (63, 75)
    assert before < after


def _sweep_line(tmp_path: Path, found: int) -> str:
    write_yaml(tmp_path / "params.yaml", _default_params())
    config = load_config(tmp_path / "params.yaml")
    towers = resolve_towers(config)
    keys = {t.name: f"key{i}" for i, t in enumerate(towers)}
    lookup = Lookup(keys, {}, {name: object() for name in list(keys)[:found]})
    plan = SimpleNamespace(towers=towers)
    return sweep_line(config, plan, lookup, tmp_path / "store", "this process", "run0")


def test_the_counts_come_from_the_train_stages_own_line(tmp_path):
    reused = _sweep_line(tmp_path, found=9)
    fresh = _sweep_line(tmp_path, found=0)
    output = f"Running stage 'train':\n[train] {reused}\n...\n[train] {fresh}\n"
    assert reuse_part.trained_counts(output) == [
        {"trained": 1, "models": 10},
        {"trained": 10, "models": 10},
    ]


def test_refines_rounds_are_read_from_its_round_lines():
    output = (
        "[refine] round 1: chosen 0.01; adding l2_4p5e_3 (0.0045), l2_1p4e_2 (0.014) to the"
        " sweep's 10 entries\n"
        "[refine] round 2: chosen 0.0045; adding l2_3p7e_3 (0.0037) to the sweep's 12 entries\n"
    )
    assert reuse_part.refine_rounds(output) == [
        ["l2_4p5e_3 (0.0045)", "l2_1p4e_2 (0.014)"],
        ["l2_3p7e_3 (0.0037)"],
    ]


def _run(seconds: float, trained: int, models: int, lock: str = "a") -> dict:
    stages = {"train": seconds / 2}
    return {"repro_s": seconds, "stages_s": stages, "trained": trained, "models": models,
            "lock": lock}  # fmt: skip


def test_the_table_says_which_targets_are_met():
    results = {
        "entry": {
            "first": _run(40, 10, 10),
            "reused": _run(10, 1, 11),
            "retrained": _run(40, 11, 11),
            "alone": _run(8, 1, 1),
            "overhead": {"models": 10, "key_and_look_up_s": 0.5, "store_s": 0.1},
        },
        "grid": {
            "first": _run(100, 63, 63),
            "reused": _run(30, 13, 75),
            "retrained": _run(120, 75, 75, lock="b"),
        },
    }
    rows = reuse_table.table(results).splitlines()
    added, _, rest, alone, _, _, lock, grid, _, _, grid_lock, overhead, _ = rows[2:]
    assert "| 10.0 s |" in added and "| **4.0x faster** |" in added
    assert "| 5.0 s | `L2LAB_RETRAIN=1`: 20.0 s | 0.25x the time |" in rest
    assert "| **1.25x** the time |" in alone
    assert "| identical |" in lock
    assert "trained 13 of 75 models" in grid and "| **differ** |" in grid_lock
    assert "| **2.50%** |" in overhead
    # The page quoting the table says what was measured; the verdicts go to the terminal.
    assert " met" not in reuse_table.table(results)
    assert reuse_table.targets(results) == [
        "met: an added entry 3x faster than L2LAB_RETRAIN=1 (4.00x)",
        "met: an added entry within 1.5x of that entry alone (1.25x)",
        "met: an added entry trains 1 model (trained 1 of 11 models)",
        "met: (1) dvc.lock byte-identical to the full retrain's",
        "NOT MET: keying and looking up under 2% of a first run's train stage (2.50%)",
        "NOT MET: a grid rate trains only its 12 new models (trained 13 of 75 models)",
        "NOT MET: (2) dvc.lock byte-identical to the full retrain's",
    ]

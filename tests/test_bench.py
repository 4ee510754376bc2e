"""The benchmark's code path on tiny settings. No timing assertions: speed lives in its table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import harness, sweep_part
from tests.support.params import ROOT, tiny_params, write_yaml


def test_stage_names_come_from_the_stage_command_line():
    old = ["-m", "pipeline.train", "--entry", "l2_0", "--params", "params.yaml"]
    assert harness.stage_name(old) == "train@l2_0"  # the per-entry layout (b45d537)
    assert harness.stage_name(["-m", "pipeline.train", "--params", "params.yaml"]) == "train"
    assert harness.stage_name(["-m", "pipeline.report", "--out", "reports"]) == "report"


def test_shrinking_keeps_the_model_and_leaves_the_input_alone():
    params = tiny_params()
    params["sweep"]["third"] = {"l2": 0.1}
    small = harness.shrink_params(params, epochs=3, entries=2)
    assert list(small["sweep"]) == ["plain", "layerwise"]
    assert small["train"]["epochs"] == 3
    assert small["model"] == params["model"]
    assert len(params["sweep"]) == 3
    assert harness.shrink_params(params) == params


def test_the_layer_grid_is_the_63_models_of_the_docs(tmp_path):
    """The scaling benchmark's grid, through the lab's own validation and expansion."""
    from ruamel.yaml import YAML

    from benchmarks.compute_part import layer_grid_params
    from pipeline.config import load_config, resolve_towers

    params = layer_grid_params(YAML(typ="safe").load((ROOT / "params.yaml").read_text()))
    write_yaml(tmp_path / "params.yaml", params)
    towers = resolve_towers(
        load_config(tmp_path / "params.yaml"), ["hidden_1", "hidden_2", "output"]
    )
    assert len(towers) == 63
    assert len({t.entry.name for t in towers}) == 21


def test_extra_seeds_make_every_entry_train_again():
    seeded = harness.with_extra_seeds(tiny_params(), 3)
    assert seeded["base"]["repeat_seeds"] == [43, 44, 45]
    assert tiny_params()["base"]["repeat_seeds"] == []


def test_the_old_layout_gets_only_the_params_its_params_yaml_knows():
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", "b45d537:params.yaml"], capture_output=True, text=True
    )
    if shown.returncode != 0:
        pytest.skip("commit b45d537 is not in this clone (shallow?)")
    old_params_yaml = shown.stdout
    from ruamel.yaml import YAML

    template = YAML(typ="safe").load(old_params_yaml)
    params = tiny_params()
    params["grid"] = {"rates": [0.01]}
    params["data"]["shape"] = "image"
    params["sweep"]["decayed"] = {"weight_decay": 0.1}
    known = sweep_part.known_to(template, params)
    assert "grid" not in known and "shape" not in known["data"]
    assert known["sweep"] == params["sweep"]  # entries whole, as the old layout reads them
    # The digits demo's settings, where the old layout reads them.
    assert known["data"]["train_subset"] == params["data"]["digits"]["train_subset"]
    assert known["data"]["label_noise"] == params["data"]["digits"]["label_noise"]
    assert "digits" not in known["data"]


@pytest.mark.slow
def test_tiny_benchmark_writes_json_and_a_table(tmp_path: Path):
    """Parts (b)-(d) on the tiny params; (a) runs the old layout's `dvc repro` (minutes)."""
    write_yaml(tmp_path / "params.yaml", tiny_params())
    out = tmp_path / "bench.json"
    argv = ["--params", str(tmp_path / "params.yaml"), "--epochs", "2", "--extra-seeds", "1"]
    argv += ["--parts", "fused,mlflow,memory", "--no-jit", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    fused = results["fused"]
    assert sorted(fused["towers"]) == ["layerwise", "plain"]
    assert fused["default"]["fused_s"] > 0
    assert fused["default"]["max_weight_difference"] == 0  # towers equal models trained alone
    assert set(fused["default"]["alone_s"]) == {"plain", "layerwise"}
    for store in ("sqlite", "http"):
        run = results["mlflow"][store]
        assert 0 < run["tracking_s"] < run["run_s"]
        assert run["tracking_s_by_call"]["log_keras_model"] > 0
        assert run["models"] == 2
    assert results["memory"]["seeds"]["models"] == 4
    assert results["memory"]["seeds"]["peak_rss_mib"] > 0
    assert "| (b) fused `fit_towers`" in done.stdout
    assert "| (c) `pipeline.tracking` calls in `train`" in done.stdout
    assert "| (d) peak RSS of `train`, 4 models" in done.stdout
    assert "Shared machine" in done.stdout


def test_the_ui_links_benchmark_reads_the_sweeps_rates_and_makes_a_u():
    from benchmarks import ui_links

    rates = ui_links.default_rates(ROOT / "params.yaml")
    # Single-rate L2 entries only: no per-layer rates, no weight decay.
    assert "hidden_only_1e_2" not in rates and "decay_3" not in rates
    assert rates["l2_0"] == 0.0 and rates["l2_1e_2"] == 0.01
    sweep = ui_links.made_up_sweep({"a": 0.0, "b": 0.01, "c": 0.1})
    assert sweep == {"a": (0.0, 0.17), "b": (0.01, 0.14), "c": (0.1, 0.17)}


@pytest.mark.slow
@pytest.mark.services  # Chromium and `mlflow server`
def test_the_ui_links_benchmark_times_both_links(tmp_path: Path):
    from tests.support.mlflow_ui import CHROMEDRIVER, CHROMIUM

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver")
    write_yaml(tmp_path / "params.yaml", {"sweep": {"l2_0": {"l2": 0.0}, "l2_1e_2": {"l2": 0.01}}})
    out = tmp_path / "ui.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.ui_links", "--params", str(tmp_path / "params.yaml"),
         "--visits", "2", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["entries"] == 2
    assert {name: len(times) for name, times in result["seconds"].items()} == {
        "chart": 2,
        "table": 2,
    }
    assert "| chart |" in done.stdout and "| table |" in done.stdout
    assert "at 1920x1080, `mlflow server`" in done.stdout
    assert result["machine"]["mlflow"].startswith("3.17")  # what docs/views.md quotes

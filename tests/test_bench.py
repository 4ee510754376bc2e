"""The benchmark's code path on tiny settings. No timing assertions: speed lives in its table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, tiny_params, write_yaml

from benchmarks import bench


def test_stage_names_come_from_the_stage_command_line():
    argv = ["-m", "pipeline.train", "--entry", "l2_0", "--params", "params.yaml"]
    assert bench.stage_name(argv) == "train@l2_0"
    assert bench.stage_name(["-m", "pipeline.report", "--out", "reports"]) == "report"


def test_training_flops_count_forward_backward_and_validation():
    shapes = [[64, 256], [256, 10]]
    macs = 64 * 256 + 256 * 10
    assert bench.training_flops_per_sample(shapes, n_train=100, n_val=50) == 6 * macs + macs


def test_quick_keeps_the_model_and_shrinks_epochs_and_sweep():
    params = tiny_params()
    params["sweep"]["third"] = {"l2": 0.1}
    quick = bench.shrink_params(params, quick=True)
    assert list(quick["sweep"]) == ["plain", "layerwise"]
    assert quick["train"]["epochs"] == min(10, params["train"]["epochs"])
    assert quick["model"] == params["model"]
    assert len(params["sweep"]) == 3  # the input is left alone


@pytest.mark.slow
def test_quick_benchmark_writes_json_and_a_table(tmp_path: Path):
    write_yaml(tmp_path / "params.yaml", tiny_params())
    out = tmp_path / "bench.json"
    argv = ["--quick", "--parts", "training,mlflow", "--params", str(tmp_path / "params.yaml")]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", *argv, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["training"]["speedup_vs_plain"] > 0
    assert 0 <= results["training"]["val_error_pipeline"][0] <= 1
    assert results["mlflow"]["http"]["tracking_s"] > 0
    assert all(r["tracking_s"] == 0 for r in results["mlflow"]["runs"]["none"])
    assert "| training throughput" in done.stdout
    assert "MLflow calls in a `train` run" in done.stdout

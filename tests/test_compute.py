"""Where a sweep's groups train changes no bit: in this process at group sizes 1, 3 and all,
and in 2 local worker processes (real processes, pinned to 1 intra-op thread each), every
tower ends with the same weights, max |difference| == 0. No tolerance: a group's graph,
seeds and data are the same wherever it runs, and the towers of a graph never mix.

Faults, with real processes: a worker killed by SIGKILL mid-group is replaced and its group
trains again, with the same bits; a group that raises fails alone, with its reason.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from pipeline.compute import ModelTask, Recipe, cut_groups, run_groups
from pipeline.compute.executors import EachEpochOnce
from pipeline.compute.local import LocalWorkers
from pipeline.config import BuilderRef, ComputeConfig, ModelConfig
from tests.support.params import write_yaml
from tests.support.project import children_of, mlflow_runs, models_hash, parent_of_models
from tests.support.training import (
    COMPUTE_EPOCHS,
    COMPUTE_SEED,
    compute_towers,
    max_difference,
    weights_of,
)

BOOM = """
def boom(input_shape, n_classes):
    raise RuntimeError("this builder fails on purpose")
"""


@pytest.fixture(scope="module")
def on_workers(tensorflow, compute_sweep_recipe, tmp_path_factory):
    """Two workers; group 1's worker SIGKILLed at its first epoch; a group whose builder
    raises beside the others."""
    recipe = compute_sweep_recipe
    boom_root = tmp_path_factory.mktemp("boom")
    (boom_root / "builders").mkdir()
    (boom_root / "builders" / "boom.py").write_text(BOOM)
    boom_recipe = Recipe(
        **{
            **recipe.__dict__,
            "builder": BuilderRef.of(
                ModelConfig(builder="builders/boom.py:boom", hidden_units=[16], activation="tanh"),
                boom_root,
            ),
        }
    )
    tasks = cut_groups(compute_towers(), 3, recipe)
    boom = cut_groups([(ModelTask("broken", (), 7, 0.0), None)], 1, boom_recipe)[0]
    tasks.append(dataclasses.replace(boom, index=len(tasks)))
    executor = LocalWorkers(n_workers=2, threads=1, seed=COMPUTE_SEED)
    killed = []
    plain_epochs = []  # what the stage's sinks see of "plain", killed and trained again

    def kill_group_one_once(epoch, per_tower):
        if not killed and "plain" in per_tower:
            pid = executor.pid_of_group(0)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        if "plain" in per_tower:
            plain_epochs.append(epoch)

    outcome = executor.run(tasks, EachEpochOnce(kill_group_one_once))
    return outcome, killed, executor, plain_epochs


@pytest.mark.slow  # 13 graphs of 25 epochs, with the reference
def test_group_sizes_one_three_and_all_give_the_same_bits(compute_sweep_recipe, compute_reference):
    for size in (1, 3):
        tasks = cut_groups(compute_towers(), size, compute_sweep_recipe)
        assert max(len(t.towers) for t in tasks) == size
        got = weights_of(run_groups(tasks, ComputeConfig(group_size=size), lambda *_: None))
        assert max_difference(got, compute_reference) == 0.0, size


def test_groups_are_cut_evenly_per_training_set(compute_sweep_recipe):
    tasks = cut_groups(compute_towers(), 4, compute_sweep_recipe)
    assert [(len(t.towers), t.training_set) for t in tasks] == [
        (3, None),
        (3, None),
        (2, (60, 0.1)),
    ]


@pytest.mark.slow
def test_two_local_workers_give_the_same_bits_even_after_a_sigkill(on_workers, compute_reference):
    outcome, killed, _, plain_epochs = on_workers
    assert len(killed) == 1
    results = {r.index: r for r in outcome.results}
    assert results[0].attempts == 2  # the killed group trained again
    assert all(r.attempts == 1 for i, r in results.items() if i != 0)
    got = {name: w for r in outcome.results for name, w in r.weights.items()}
    assert max_difference(got, compute_reference) == 0.0
    # The bit-deciding environment comes back with every group: pinned thread pools.
    assert {r.environment["intra_op_threads"] for r in outcome.results} == {"1"}
    assert {r.environment["inter_op_threads"] for r in outcome.results} == {"2"}
    # The rerun's repeated epochs reach MLflow, the history and the progress block once.
    assert plain_epochs == list(range(1, COMPUTE_EPOCHS + 1))


@pytest.mark.slow
def test_a_group_that_raises_fails_alone_with_its_reason(on_workers):
    outcome, _, executor, _ = on_workers
    [failure] = outcome.failures
    assert failure.names == ["broken"]
    assert "RuntimeError: this builder fails on purpose" in failure.reason
    assert len(outcome.results) == 3  # every other group is recorded
    assert executor.workers == []  # and no worker outlives the run


@pytest.mark.slow
def test_the_stage_on_two_workers_retrains_nothing_and_repeats_its_models(reproduced):
    """`compute:` is no DVC param: changing it leaves `train` up to date; forced to run on two
    workers, `train` writes the same bytes (dvc.lock's hash of models/) and tags each run
    with the environment that decided its bits."""
    yaml = YAML(typ="safe", pure=True)
    params = yaml.load(reproduced.params_path.read_text())
    params["compute"] = {"workers": 2, "group_size": 1, "threads_per_worker": 1}
    write_yaml(reproduced.params_path, params)
    assert "train" not in reproduced.dvc("status").stdout

    before = models_hash(reproduced)
    result = reproduced.dvc("repro", "-f", "train")
    assert "2 local worker processes" in result.stderr + result.stdout
    assert models_hash(reproduced) == before
    runs = mlflow_runs(reproduced)
    children = children_of(runs, parent_of_models(reproduced, runs).info.run_id)
    assert len(children) == 2
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["compute.intra_op_threads"] == "1"
        assert run.data.tags["compute.onednn_max_cpu_isa"] == "AVX2"
    assert {run.data.tags["compute.group"] for run in children} == {"1", "2"}


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.slow
def test_sigterm_to_the_stage_ends_every_run_killed_and_every_worker(reproduced):
    params = YAML(typ="safe", pure=True).load(reproduced.params_path.read_text())
    params["train"]["epochs"] = 5000
    params["compute"] = {"workers": 2, "group_size": 1}
    write_yaml(reproduced.params_path, params)
    runs_before = {run.info.run_id for run in mlflow_runs(reproduced)}
    err_path = reproduced.root.parent / "train.err"
    with err_path.open("w") as err:
        stage = subprocess.Popen(
            [sys.executable, "-m", "pipeline.train", "--params", "params.yaml"],
            cwd=reproduced.root, env=reproduced.env, stderr=err, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while "[train] epoch progress" not in err_path.read_text():
            assert stage.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.2)
        children = _children(stage.pid)
        # The two workers, and multiprocessing's resource tracker beside them.
        workers = [pid for pid in children if b"spawn_main" in _cmdline(pid)]
        assert len(workers) == 2, [_cmdline(pid) for pid in children]
        stage.send_signal(signal.SIGTERM)  # the stage alone: it must end its workers itself
        assert stage.wait(timeout=120) == 128 + signal.SIGTERM
    assert "error: train: interrupted by SIGTERM" in err_path.read_text()
    deadline = time.monotonic() + 10  # the tracker ends once it reads the end of its pipe
    while [pid for pid in children if Path(f"/proc/{pid}").exists()]:
        assert time.monotonic() < deadline, [_cmdline(pid) for pid in children]
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    new = [r for r in mlflow_runs(reproduced) if r.info.run_id not in runs_before]
    assert len(new) == 3  # the sweep's parent and its two models
    assert {run.info.status for run in new} == {"KILLED"}

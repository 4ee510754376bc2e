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

import numpy as np
import pytest

from pipeline.core.runtime import init_tensorflow

init_tensorflow(seed=0)

from conftest import prepared_splits  # noqa: E402

from pipeline.compute import ModelTask, Recipe, cut_groups, run_groups  # noqa: E402
from pipeline.compute.executors import EachEpochOnce  # noqa: E402
from pipeline.compute.local import LocalWorkers  # noqa: E402
from pipeline.config import BuilderRef, ComputeConfig, ModelConfig  # noqa: E402
from pipeline.config.schema import TrainConfig  # noqa: E402
from pipeline.core import contracts  # noqa: E402

SEED = 42
EPOCHS = 25  # long enough that a worker is still mid-group when the test kills it
RATES = ("hidden_1", "hidden_2", "output")
# name, rates, weight decay, seed, training set: Adam and AdamW, per-layer rates, extra
# seeds, and a pool subset with its own label noise (a training set of its own).
SWEEP = [
    ("plain", (0.0, 0.0, 0.0), 0.0, 7, None),
    ("layerwise", (0.01, 0.001, 0.0), 0.0, 7, None),
    ("decay", (0.0, 0.0, 0.0), 0.5, 7, None),
    ("both", (0.003, 0.003, 0.003), 0.2, 7, None),
    ("layerwise-seed8", (0.01, 0.001, 0.0), 0.0, 8, None),
    ("decay-seed9", (0.0, 0.0, 0.0), 0.5, 9, None),
    ("small", (0.0, 0.0, 0.0), 0.0, 7, (60, 0.1)),
    ("small_l2", (0.01, 0.01, 0.01), 0.0, 7, (60, 0.1)),
]
BOOM = """
def boom(input_shape, n_classes):
    raise RuntimeError("this builder fails on purpose")
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Recipe:
    folder = tmp_path_factory.mktemp("compute")
    prepared_splits(folder)
    meta = contracts.read_meta(folder / "prepared")
    return Recipe(
        builder=BuilderRef(ModelConfig(hidden_units=[16, 16], activation="tanh")),
        input_shape=tuple(meta.input_shape),
        n_classes=meta.n_classes,
        prepared_dir=folder / "prepared",
        base_seed=SEED,
        train=TrainConfig(learning_rate=0.01, batch_size=16, epochs=EPOCHS),
    )


def towers():
    return [
        (ModelTask(n, tuple(zip(RATES, r, strict=True)), s, d), key) for n, r, d, s, key in SWEEP
    ]


def weights_of(outcome) -> dict[str, list[np.ndarray]]:
    assert outcome.failures == []
    return {name: w for result in outcome.results for name, w in result.weights.items()}


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(
        float(np.max(np.abs(x - y))) for name in a for x, y in zip(a[name], b[name], strict=True)
    )


@pytest.fixture(scope="module")
def reference(recipe):
    """Every tower of a training set in one graph, in this process."""
    tasks = cut_groups(towers(), len(SWEEP), recipe)
    assert [len(t.towers) for t in tasks] == [6, 2]
    return weights_of(run_groups(tasks, ComputeConfig(), lambda *_: None))


@pytest.fixture(scope="module")
def on_workers(recipe, tmp_path_factory):
    """Two workers; group 1's worker SIGKILLed at its first epoch; a group whose builder
    raises beside the others."""
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
    tasks = cut_groups(towers(), 3, recipe)
    boom = cut_groups([(ModelTask("broken", (), 7, 0.0), None)], 1, boom_recipe)[0]
    tasks.append(dataclasses.replace(boom, index=len(tasks)))
    executor = LocalWorkers(n_workers=2, threads=1, seed=SEED)
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


def test_group_sizes_one_three_and_all_give_the_same_bits(recipe, reference):
    for size in (1, 3):
        tasks = cut_groups(towers(), size, recipe)
        assert max(len(t.towers) for t in tasks) == size
        got = weights_of(run_groups(tasks, ComputeConfig(group_size=size), lambda *_: None))
        assert max_difference(got, reference) == 0.0, size


def test_groups_are_cut_evenly_per_training_set(recipe):
    tasks = cut_groups(towers(), 4, recipe)
    assert [(len(t.towers), t.training_set) for t in tasks] == [
        (3, None),
        (3, None),
        (2, (60, 0.1)),
    ]


def test_two_local_workers_give_the_same_bits_even_after_a_sigkill(on_workers, reference):
    outcome, killed, _, plain_epochs = on_workers
    assert len(killed) == 1
    results = {r.index: r for r in outcome.results}
    assert results[0].attempts == 2  # the killed group trained again
    assert all(r.attempts == 1 for i, r in results.items() if i != 0)
    got = {name: w for r in outcome.results for name, w in r.weights.items()}
    assert max_difference(got, reference) == 0.0
    # The bit-deciding environment comes back with every group: pinned thread pools.
    assert {r.environment["intra_op_threads"] for r in outcome.results} == {"1"}
    assert {r.environment["inter_op_threads"] for r in outcome.results} == {"2"}
    # The rerun's repeated epochs reach MLflow, the history and the progress block once.
    assert plain_epochs == list(range(1, EPOCHS + 1))


def test_a_group_that_raises_fails_alone_with_its_reason(on_workers):
    outcome, _, executor, _ = on_workers
    [failure] = outcome.failures
    assert failure.names == ["broken"]
    assert "RuntimeError: this builder fails on purpose" in failure.reason
    assert len(outcome.results) == 3  # every other group is recorded
    assert executor.workers == []  # and no worker outlives the run


def test_the_stage_on_two_workers_retrains_nothing_and_repeats_its_models(reproduced):
    """`compute:` is no DVC param: changing it leaves `train` up to date; forced to run on two
    workers, `train` writes the same bytes (dvc.lock's hash of models/) and tags each run
    with the environment that decided its bits."""
    from conftest import children_of, mlflow_runs, parent_of_models, write_yaml
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    params = yaml.load(reproduced.params_path.read_text())
    params["compute"] = {"workers": 2, "group_size": 1, "threads_per_worker": 1}
    write_yaml(reproduced.params_path, params)
    assert "train" not in reproduced.dvc("status").stdout

    def models_hash() -> str:
        lock = yaml.load((reproduced.root / "dvc.lock").read_text())
        return lock["stages"]["train"]["outs"][0]["md5"]

    before = models_hash()
    result = reproduced.dvc("repro", "-f", "train")
    assert "2 local worker processes" in result.stderr + result.stdout
    assert models_hash() == before
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


def test_sigterm_to_the_stage_ends_every_run_killed_and_every_worker(reproduced):
    from conftest import mlflow_runs, write_yaml
    from ruamel.yaml import YAML

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

"""A 2-node Ray cluster on loopback trains the groups with the same bits as this process.

Real Ray: `ray.cluster_utils.Cluster` as Ray's own tests use it, two nodes of 1 CPU each on
127.0.0.1 only (`node_ip_address` with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0), dashboard and
usage stats off, token authentication set explicitly, a HOME of its own. One cluster for
the module, shut down by the fixture that started it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import pytest

from pipeline.compute import cut_groups, run_groups
from pipeline.config import ComputeConfig
from tests.support.project import children_of, mlflow_runs, models_hash, parent_of_models
from tests.support.training import COMPUTE_SWEEP, compute_towers, max_difference, weights_of

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture(scope="module")
def ray_env() -> dict[str, str]:
    """What the cluster and the stage that joins it read from the environment."""
    return {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # with node_ip_address: loopback only
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
    }


@pytest.fixture(scope="module")
def cluster(ray_env, tmp_path_factory):
    """Two single-CPU nodes on loopback. Ray reads its settings when it is imported, so they
    are set before the import, and put back (by the MonkeyPatch) when the module is done."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in ray_env.items():
            patch.setenv(key, value)
        patch.setenv("HOME", str(tmp_path_factory.mktemp("ray-home")))
        patch.delenv("RAY_ADDRESS", raising=False)
        pytest.importorskip("ray")
        from ray.cluster_utils import Cluster

        node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
        started = Cluster(initialize_head=True, head_node_args=node)
        try:
            started.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            started.wait_for_nodes()
            patch.setenv("RAY_ADDRESS", started.address)
            yield started
        finally:
            started.shutdown()


def test_a_two_node_ray_cluster_gives_the_same_bits(
    cluster, compute_sweep_recipe, compute_reference
):
    recipe = compute_sweep_recipe
    tasks = cut_groups(compute_towers(), 3, recipe)
    epochs_seen: list[int] = []
    outcome = run_groups(
        tasks,
        ComputeConfig(group_size=3),
        lambda epoch, per_tower: epochs_seen.append(epoch),
    )
    assert max_difference(weights_of(outcome), compute_reference) == 0.0
    # Every group's epochs streamed back while it trained, from both nodes' workers.
    assert len(epochs_seen) == len(tasks) * recipe.train.epochs
    assert {r.environment["intra_op_threads"] for r in outcome.results} == {"1"}


def test_the_train_stage_on_the_cluster_writes_the_same_models(cluster, ray_env, reproduced):
    """`dvc repro -f train` with RAY_ADDRESS set: the same hash of models/ in dvc.lock, and
    the stage's runs FINISHED (only the stage talks to MLflow)."""

    before = models_hash(reproduced)
    reproduced.env.update(ray_env, RAY_ADDRESS=cluster.address, HOME=os.environ["HOME"])
    result = reproduced.dvc("repro", "-f", "train")
    assert "Ray tasks on the cluster" in result.stderr + result.stdout
    assert models_hash(reproduced) == before
    runs = mlflow_runs(reproduced)
    children = children_of(runs, parent_of_models(reproduced, runs).info.run_id)
    assert {run.info.status for run in children} == {"FINISHED"}
    assert all(run.data.tags["compute.onednn_max_cpu_isa"] == "AVX2" for run in children)


# A second driver that holds every CPU of the cluster's nodes until the file `release`
# exists; it writes `held` once both hold tasks run.
HOLD_CPUS = """
import os, pathlib, sys, time
import ray

ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
folder = pathlib.Path(sys.argv[1])

@ray.remote(num_cpus=1)
def hold(index):
    (folder / f"holding_{index}").touch()
    while not (folder / "release").exists():
        time.sleep(0.05)

pending = [hold.remote(i) for i in range(2)]
while len(list(folder.glob("holding_*"))) < 2:
    time.sleep(0.05)
(folder / "held").touch()
ray.get(pending)
"""


def test_a_node_removed_while_its_group_trains_costs_a_rerun_not_a_bit(
    cluster, compute_sweep_recipe, compute_reference, tmp_path
):
    """The two nodes' CPUs are held by another driver; a third node joins, so the first group
    can only train there. At its first epoch the node is removed and the CPUs released: the
    group trains again elsewhere with the same bits, and its repeated epochs reach the
    stage's sinks once. (Removing it at any group's first epoch, with all CPUs free, raced
    Ray's placement under load: the third group was not always on it yet.)"""
    recipe = compute_sweep_recipe
    holder = subprocess.Popen([sys.executable, "-c", HOLD_CPUS, str(tmp_path)])
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "held").exists():
            assert holder.poll() is None and time.monotonic() < deadline, "CPUs not held"
            time.sleep(0.1)
        extra = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        tasks = cut_groups(compute_towers(), 3, recipe)
        assert len(tasks) == 3
        epochs_seen: list[tuple[int, str]] = []
        removed = []

        def remove_the_extra_node_at_the_first_epoch(epoch, per_tower):
            if not removed:
                cluster.remove_node(extra, allow_graceful=False)
                removed.append(epoch)
                (tmp_path / "release").touch()
            epochs_seen.extend((epoch, name) for name in per_tower)

        outcome = run_groups(
            tasks, ComputeConfig(group_size=3), remove_the_extra_node_at_the_first_epoch
        )
    finally:
        (tmp_path / "release").touch()
        holder.wait(timeout=60)
    assert removed == [1]
    attempts = sorted(r.attempts for r in outcome.results)
    assert attempts == [1, 1, 2]  # the removed node's group, and only it, trained again
    assert max_difference(weights_of(outcome), compute_reference) == 0.0
    assert sorted(epochs_seen) == sorted(
        (epoch, name) for epoch in range(1, recipe.train.epochs + 1) for name, *_ in COMPUTE_SWEEP
    )

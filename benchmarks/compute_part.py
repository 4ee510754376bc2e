"""(e) Scaling: the first epoch's cost per tower, executors, and the cold sweep, against 5b79e93.

`python -m benchmarks.compute_part` (with .venv activated). Every ratio is against a baseline
measured in the same run; the projection rows are computed from the measured per-group
costs, not measured. Writes benchmarks/compute_results.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from benchmarks.harness import ROOT, bench_env, machine, old_worktree, shrink_params, write_params
from benchmarks.sweep_part import cold_repro, known_to

log = logging.getLogger("bench")
BEFORE = "5b79e93"  # the last commit before groups and the summed tower loss


def first_epoch(source: Path, prepared: Path, towers: int, epochs: int) -> float:
    argv = [sys.executable, str(ROOT / "benchmarks" / "first_epoch.py"), "--src", str(source)]
    argv += ["--prepared", str(prepared), "--towers", str(towers), "--epochs", str(epochs)]
    done = subprocess.run(argv, capture_output=True, text=True, env=bench_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    assert payload["code"].startswith(str(source)), payload  # the intended code ran
    return payload["fit_s"]


def bench_first_epoch(
    source_now: Path, source_before: Path, prepared: Path, sizes, baseline_max: int
) -> dict:
    """fit(epochs=1) and fit(epochs=3) per size: the first epoch is one-epoch time minus the
    mean of the later epochs. The baseline only up to `baseline_max` towers: its first epoch
    grows faster than the towers (56 s for 40), so 160 would take most of an hour."""
    rows = {}
    for towers in sizes:
        sources = [("now", source_now)]
        if towers <= baseline_max:
            sources.append(("before", source_before))
        for name, source in sources:
            one = first_epoch(source, prepared, towers, 1)
            three = first_epoch(source, prepared, towers, 3)
            later = max(three - one, 0.0) / 2
            rows[f"{name}_{towers}"] = {
                "towers": towers,
                "fit_1_epoch_s": one,
                "fit_3_epochs_s": three,
                "first_epoch_per_tower_s": (one - later) / towers,
            }
            log.info("(e) first epoch, %s code, %d towers: %.1f s", name, towers, one)
    return rows


def executor_task(params_path: Path, prepared: Path, env_extra: dict) -> dict:
    """One `train`-like run of the groups with the executor `params`/`env` choose."""
    code = f"""
import json, time
started = time.perf_counter()
from pathlib import Path
from pipeline.config import BuilderRef, load_config
from pipeline.core.runtime import init_tensorflow
config = load_config(Path({str(params_path)!r}))
init_tensorflow(config.base.seed)
from pipeline.compute.sweep_plan import plan_sweep
from pipeline.compute import run_groups, sweep_groups
plan = plan_sweep(config, Path({str(prepared)!r}), BuilderRef.of(config.model, Path({str(ROOT)!r})))
tasks = sweep_groups(config, plan.towers, plan.meta, plan.prepared_dir, plan.builder)
planned = time.perf_counter()
outcome = run_groups(tasks, config.compute, lambda *_: None, {{m.name: m for m in plan.models}})
done = time.perf_counter()
print(json.dumps({{"plan_s": planned - started, "groups_s": done - planned,
                  "group_fit_s": [r.seconds for r in outcome.results], "groups": len(tasks)}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=bench_env(**env_extra)
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_executors(work: Path, params: dict, prepared: Path, ray_cluster: bool) -> dict:
    rows = {}
    for name, compute in (
        ("in_process", {"workers": 0}),
        ("workers_1", {"workers": 1}),
        ("workers_2", {"workers": 2}),
    ):
        path = work / f"params-{name}.yaml"
        write_params(path, {**params, "compute": {**params.get("compute", {}), **compute}})
        rows[name] = executor_task(path, prepared, {})
        log.info("(e) %s: groups in %.1f s", name, rows[name]["groups_s"])
    if ray_cluster:
        rows["ray_2_nodes"] = bench_ray(work, params, prepared)
    return rows


def bench_ray(work: Path, params: dict, prepared: Path) -> dict:
    """A 2-node local cluster (1 CPU each, loopback): its start-up timed apart."""
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    os.environ.update(env)
    from ray.cluster_utils import Cluster

    started = time.perf_counter()
    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    try:
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        startup = time.perf_counter() - started
        path = work / "params-ray.yaml"
        write_params(path, params)
        row = executor_task(path, prepared, {**env, "RAY_ADDRESS": cluster.address})
    finally:
        cluster.shutdown()
    row["cluster_start_s"] = startup
    log.info("(e) Ray, 2 nodes: start %.1f s, groups in %.1f s", startup, row["groups_s"])
    return row


# The layer grid of docs/choosing-l2.md: 6 rates x (all + each of 3 layers) - 3 duplicates
# of rate 0 = 21 entries, x 3 seeds = 63 models.
LAYER_GRID = {
    "sweep": {},
    "grid": {
        "rates": [0, 0.001, 0.003, 0.01, 0.03, 0.1],
        "layers": ["all", "each"],
        "train_sizes": [None],
        "label_noise": [None],
    },
}


def layer_grid_params(params: dict) -> dict:
    return {
        **params,
        **LAYER_GRID,
        "base": {**params["base"], "repeat_seeds": [43, 44]},
    }


def now_and_before(work: Path, prefix: str, params: dict, before: Path) -> dict:
    """Cold `dvc repro -f` with these params in this tree, then in the `before` tree (given
    only the params its params.yaml knows)."""
    now = cold_repro(work, f"{prefix}now", ROOT, params)
    template = YAML(typ="safe").load((before / "params.yaml").read_text())
    was = cold_repro(work, f"{prefix}before", before, known_to(template, params))
    return {"now": now, "before": was}


def projection(executors: dict, cores: int = 16, nodes: int = 4) -> dict:
    """From the measured per-group fit times on 1 worker: groups spread over `cores`
    single-thread workers per node (a projection, not a measurement)."""
    fits = sorted(executors["workers_1"]["group_fit_s"], reverse=True)

    def makespan(slots: int) -> float:
        loads = [0.0] * slots
        for fit in fits:  # longest first onto the least loaded slot
            loads[loads.index(min(loads))] += fit
        return max(loads)

    return {
        "one_worker_s": sum(fits),
        f"{cores}_cores_s": makespan(cores),
        f"{nodes}_nodes_x_{cores}_cores_s": makespan(nodes * cores),
    }


def _versus(measure: str, now: dict, before: dict) -> str:
    """A table row: a cold repro now against the same at 5b79e93, and their ratio."""
    ratio = before["cold_repro_s"] / now["cold_repro_s"]
    return (
        f"| {measure} | {now['cold_repro_s']:.1f} s | {BEFORE}: {before['cold_repro_s']:.1f} s "
        f"| {ratio:.2f}x |"
    )


def table(results: dict) -> str:
    rows = ["| measure | value | baseline (same run) | ratio |", "|---|---|---|---|"]
    fe = results.get("first_epoch", {})
    for key, row in fe.items():
        if not key.startswith("now_"):
            continue
        now_s = row["first_epoch_per_tower_s"]
        before = fe.get(key.replace("now_", "before_"))
        versus = "not measured |"
        if before is not None:
            before_s = before["first_epoch_per_tower_s"]
            versus = f"{BEFORE}: {before_s:.2f} s | {before_s / now_s:.2f}x"
        rows.append(f"| first epoch per tower, {row['towers']} towers | {now_s:.2f} s | {versus} |")
    if "sweep" in results:
        now, before = results["sweep"]["now"], results["sweep"]["before"]
        rows.append(_versus("cold `dvc repro -f`, default sweep", now, before))
    grid = results.get("layer_grid", {})
    if "before" in grid:
        rows.append(
            _versus("cold `dvc repro -f`, the 63-model layer grid", grid["now"], grid["before"])
        )
        if "now_2_workers" in grid:
            rows.append(
                _versus(
                    "the same grid, `compute.workers: 2`", grid["now_2_workers"], grid["before"]
                )
            )
    ex = results.get("executors", {})
    if ex:
        base = ex["in_process"]["groups_s"]
        for name, row in ex.items():
            extra = (
                f" (+ cluster start {row['cluster_start_s']:.1f} s)"
                if "cluster_start_s" in row
                else ""
            )
            rows.append(
                f"| groups of the sweep, {name} | {row['groups_s']:.1f} s{extra} | in process: "
                f"{base:.1f} s | {base / row['groups_s']:.2f}x |"
            )
    for name, seconds in results.get("projection", {}).items():
        rows.append(f"| projection (not measured): {name} | {seconds:.1f} s | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--parts", default="first_epoch,executors,sweep,layer_grid,layer_grid_workers"
    )
    parser.add_argument("--sizes", default="10,40,160")
    parser.add_argument("--baseline-max-towers", type=int, default=40)
    parser.add_argument("--executor-epochs", type=int, default=20)
    parser.add_argument("--ray", action="store_true", help="also a 2-node local Ray cluster")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "compute_results.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    parts = args.parts.split(",")
    params = YAML(typ="safe").load((ROOT / "params.yaml").read_text())
    # A run of some parts keeps the other parts' figures from earlier runs.
    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = machine()
    with tempfile.TemporaryDirectory(prefix="l2lab-scale-") as tmp:
        work = Path(tmp)
        write_params(work / "params.yaml", params)
        from pipeline.prepare import prepare

        prepare(work / "params.yaml", work / "prepared")
        with old_worktree(BEFORE, work / "before-tree") as before:
            if "first_epoch" in parts:
                sizes = [int(s) for s in args.sizes.split(",")]
                results["first_epoch"] = bench_first_epoch(
                    ROOT, before, work / "prepared", sizes, args.baseline_max_towers
                )
            if "sweep" in parts:
                results["sweep"] = now_and_before(work, "", params, before)
            if "layer_grid" in parts:
                grid = layer_grid_params(params)
                # update: a grid run on workers kept from an earlier run stays
                results.setdefault("layer_grid", {}).update(
                    now_and_before(work, "grid-", grid, before)
                )
        if "layer_grid_workers" in parts:
            # The same grid's 4 groups on 2 local workers: in process, one TensorFlow
            # keeps about 1.2 of the 2 cores busy.
            grid = layer_grid_params(params)
            grid["compute"] = {**grid.get("compute", {}), "workers": 2}
            results.setdefault("layer_grid", {})["now_2_workers"] = cold_repro(
                work, "grid-now-2-workers", ROOT, grid
            )
        if "executors" in parts:
            shrunk = shrink_params(params, epochs=args.executor_epochs)
            shrunk["compute"] = {"group_size": 3}
            results["executors"] = bench_executors(work, shrunk, work / "prepared", args.ray)
            results["projection"] = projection(results["executors"])
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["table"] = table(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(results["table"])


if __name__ == "__main__":
    main()

"""Benchmark the one-process sweep against baselines measured in the same run; print a table.

    python -m benchmarks.bench                            # the default sweep (~15 min on 2 cores)
    python -m benchmarks.bench --epochs 5 --entries 2     # a quick look

Every figure is a ratio against a baseline measured in the same run, on the same params, so
a busy machine slows both sides alike:

(a) sweep: a cold `dvc repro -f` with a fresh MLflow store in a throwaway copy of the project,
    against the same for the per-entry layout (`train@<entry>`/`evaluate@<entry>`, commit
    b45d537, checked out into a temporary `git worktree` and run with this venv), and against
    the sum of the entries' pure training times, each fit alone in one warm process;
(b) fused: all entries trained as `train` trains them (`compute.run_groups`, whose groups
    run `fit_towers`, pipeline/modeling/towers.py) against each trained alone in turn
    (tests/support/reference.py), in one process (and both again with `jit_compile=True`);
(c) mlflow: the share of the `train` stage spent in `pipeline.tracking` calls, with the local
    store and with `mlflow server` on 127.0.0.1 (started here, stopped after);
(d) memory: the peak RSS of the `train` process with the sweep and with the sweep trained
    over `--extra-seeds` more seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import (
    OLD_LAYOUT,
    PARTS,
    ROOT,
    _yaml,
    machine,
    run_task,
    shrink_params,
    write_params,
)
from benchmarks.mlflow_part import bench_memory, bench_mlflow
from benchmarks.sweep_part import add_training_ratios, bench_sweep
from benchmarks.tables import conditions, table

log = logging.getLogger("bench")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--entries", type=int, help="keep only the first N sweep entries")
    parser.add_argument("--extra-seeds", type=int, default=3, help="(d): seeds added per entry")
    parser.add_argument("--old-revision", default=OLD_LAYOUT, help="(a): the per-entry layout")
    parser.add_argument("--no-jit", action="store_true", help="(b): skip jit_compile=True")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    params = shrink_params(_yaml().load(args.params.read_text()), args.epochs, args.entries)

    results: dict = {"machine": machine(), "params": params}
    with tempfile.TemporaryDirectory(prefix="l2lab-bench-") as tmp:
        work = Path(tmp)
        write_params(work / "params.yaml", params)
        from pipeline.prepare import prepare

        prepare(work / "params.yaml", work / "prepared")
        if "sweep" in parts:  # first: the slowest part, and the one most likely to fail
            results["sweep"] = bench_sweep(work, params, args.old_revision)
        if "sweep" in parts or "fused" in parts:
            log.info("(b) fits in one warm process ...")
            results["fused"] = run_task(
                "fits", params=work / "params.yaml", prepared=work / "prepared", jit=not args.no_jit
            )
        if "sweep" in parts:
            add_training_ratios(results["sweep"], results["fused"])
        if "mlflow" in parts:
            results["mlflow"] = bench_mlflow(work, params, work / "prepared")
        if "memory" in parts:
            results["memory"] = bench_memory(
                work, params, work / "prepared", args.extra_seeds, results.get("mlflow", {})
            )
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["table"] = table(results)
    results["conditions"] = conditions(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(results["conditions"])
    print()
    print(results["table"])


if __name__ == "__main__":
    main()

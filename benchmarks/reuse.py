"""Benchmark the model store (docs/reuse.md): a sweep edited and run again, against today's
full retrain (L2LAB_RETRAIN=1) of the same edit in the same run; print a table of ratios.

    python -m benchmarks.reuse                   # default params (~25 min on 2 shared cores)
    python -m benchmarks.reuse --quick           # 3 epochs: the code path, not the figures
    python -m benchmarks.reuse --parts refine    # one part again; the others' figures stay
    python -m benchmarks.reuse --render          # the table again from the figures

Every run is a whole `dvc repro` (or `pipeline.refine`) in a throwaway git + DVC copy of the
project with its own MLflow and model store, timed as the user waits for it:
(1) entry: the default sweep done, one entry added, `dvc repro`; against the same edit with
    L2LAB_RETRAIN=1 (target: 3x faster), and against the pipeline on that entry alone (a
    copy whose sweep is that entry, `dvc repro -f`, empty store; target: within 1.5x);
(2) grid: the 63-model layer grid of docs/choosing-l2.md done, one rate added: the models
    trained (only the new ones) and the time against L2LAB_RETRAIN=1;
(3) refine: `python -m pipeline.refine --rounds 3` on the default sweep, with the store and
    with L2LAB_RETRAIN=1, from the same commit;
(4) overhead (with part 1): keying the default sweep's models and looking them up in an empty
    store, as the `train` stage does on a first run, against that run's `train` stage
    (target: under 2%); writing them into the store apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import ROOT, _yaml, machine, shrink_params
from benchmarks.reuse_part import bench_entry, bench_grid, bench_refine
from benchmarks.reuse_table import table, targets

log = logging.getLogger("bench")
PARTS = ("entry", "grid", "refine")
QUICK_EPOCHS = 3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reuse_results.json")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs")
    parser.add_argument("--rounds", type=int, default=3, help="(3): refine's rounds")
    parser.add_argument("--no-overhead", action="store_true", help="skip (4)")
    parser.add_argument("--render", action="store_true", help="only redo --out's table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    if args.render:
        finish(json.loads(args.out.read_text()), args.out)
        return
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if args.quick and args.epochs is not None:
        parser.error("--quick sets the epochs; give one of --quick and --epochs")
    epochs = QUICK_EPOCHS if args.quick else args.epochs
    params = shrink_params(_yaml().load(args.params.read_text()), epochs)

    # A run of some parts keeps the other parts' figures from an earlier run of the same
    # params (e.g. refine measured again after it changes); other params start afresh.
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    results = earlier if earlier.get("params") == params else {"params": params}
    results["machine"] = machine()
    with tempfile.TemporaryDirectory(prefix="l2lab-reuse-") as tmp:
        work = Path(tmp)
        if "entry" in parts:
            results["entry"] = bench_entry(work, params, overhead=not args.no_overhead)
        if "grid" in parts:
            results["grid"] = bench_grid(work, params)
        if "refine" in parts:
            results["refine"] = bench_refine(work, params, args.rounds)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")  # kept if the table fails
    finish(results, args.out)


def finish(results: dict, out: Path) -> None:
    """The table and the targets into `out`'s figures, and printed."""
    results["table"] = table(results)
    results["targets"] = targets(results)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(results["table"])
    print()
    print("\n".join(results["targets"]))


if __name__ == "__main__":
    main()

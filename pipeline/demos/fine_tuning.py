"""Fine-tuning with L2-SP, shown offline: `python -m pipeline.demos.fine_tuning --out
docs/fine-tuning` trains a source model on digits 0-4, runs the lab on two targets (digits
5-9 with few labelled rows, and the same rows with their pixels permuted) in temporary
project copies, and writes the figures of both into `--out` (docs/fine-tuning.md).

This checkout's params.yaml, dvc.lock, data/raw/ and pretrained/ are never written."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from pipeline.demos import digit_tasks, lab_run, plot, results, sweep_design, tables
from pipeline.demos.source_model import train_source

log = logging.getLogger("fine_tuning")

# What is copied from each target lab: its report, the decision and the refit, the metrics and
# their per-layer details (not the models, kernels, held-out predictions and per-epoch CSVs).
LAB_OUTPUTS = ("reports", "refit", "metrics", "evaluation", "params.yaml")
LEFT_BEHIND = shutil.ignore_patterns("*.keras", "*.npz", "learning_curves_*.csv")


def run_target(task, source_file: Path, size, work: Path, out: Path) -> list:
    """The lab on one target: its results, and its outputs copied to `out/<target>/`."""
    npz = work / f"{task.name}.npz"
    digit_tasks.save_npz(task, npz)
    default = lab_run.read_params(lab_run.ROOT / "params.yaml")
    params = sweep_design.lab_params(default, size, len(task.labels), len(set(task.labels)))
    lab = lab_run.make_lab(
        work / task.name,
        params,
        {sweep_design.TARGET_FILE: npz, sweep_design.START_FILE: source_file},
    )
    seconds = lab_run.reproduce(lab, task.name)
    log.info("%s: dvc repro took %.0f s", task.name, seconds)
    found = results.entry_results(lab, task.name, sweep_design.entries(size))
    target_out = out / task.name
    shutil.rmtree(target_out, ignore_errors=True)
    for name in LAB_OUTPUTS:
        source = lab / name
        if source.is_dir():
            shutil.copytree(source, target_out / name, ignore=LEFT_BEHIND)
        else:
            target_out.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target_out / name)
    summary = results.summary(lab, task.name, found)
    (out / f"{task.name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / f"{task.name}.md").write_text(tables.target_page(found, summary))
    return found


def run(out: Path, size, work: Path) -> None:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    source = train_source(digit_tasks.source_task(), size.source, work / "source.keras")
    log.info(
        "source model: held-out error %.3f on %d rows of digits 0-4 (%.0f s)",
        source.held_out_error,
        source.held_out_rows,
        time.perf_counter() - started,
    )
    record = {**asdict(source), "path": None, "settings": asdict(size.source)}
    (out / "source.json").write_text(json.dumps(record, indent=1) + "\n")
    by_target = {
        task.name: run_target(task, source.path, size, work, out)
        for task in digit_tasks.target_tasks(sweep_design.SEED)
    }
    plot.test_error_by_rate(by_target, out / "test_error_by_rate.png")
    log.info("done in %.0f s; the figures are in %s", time.perf_counter() - started, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run (the test's): few rows, epochs, rates"
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="keep the temporary labs here (default: removed)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    size = sweep_design.QUICK if args.quick else sweep_design.FULL
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=False)
        run(args.out, size, args.work)
        return
    with tempfile.TemporaryDirectory(prefix="fine-tuning-") as work:
        run(args.out, size, Path(work))


if __name__ == "__main__":
    main()

"""Stage `record`: the sweep's results into MLflow, from the files `evaluate` and `report` wrote.

Each model's run gets its final metrics (`evaluation/<entry>.json`, every seed, at the 5
significant digits of `metrics/`, which MLflow's table shows as logged; and the spread over
seeds from `metrics/<entry>.json`), its rate as the chart's x and whether the report chose it
(`reports/decision.json`); the sweep's parent run gets `reports/` (table, choosing.md, plots,
best entry and its errors, decision.json) and a description: the verdict first, the links to
the sweep's saved views, and the data note.
Every parent run of exactly these models is filled (pipeline/tracking/results.py), so
the runs a `train` made are complete even when DVC skipped `evaluate` or `report` because
their outputs came out the same. DVC runs this stage on every `dvc repro` (always_changed);
it reads files only, writes none, and imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import pandas as pd

from pipeline.core import contracts
from pipeline.core.errors import DataError
from pipeline.core.runner import run_stage
from pipeline.core.task import task_named

log = logging.getLogger(__name__)

# What the report writes besides its plots, logged at the top of the parent's artifacts.
REPORT_FILES = ("sweep.csv", "sweep.md", "choosing.md", contracts.SUMMARY_FILE)


def read_results(models_dir: Path, metrics_dir: Path, details_dir: Path, reports_dir: Path):
    """The SweepResults of `models_dir` from what `evaluate` and `report` wrote."""
    from pipeline.tracking.results import SweepResults
    from pipeline.tracking.views import rate_label

    sweep = contracts.read_sweep_record(models_dir)
    entries = list(dict.fromkeys(tower.entry for tower in sweep.towers))
    per_seed, spread, read = {}, {}, []
    for entry in entries:
        details = contracts.read_stage_json(details_dir / f"{entry}.json", "evaluate")
        headline = contracts.read_stage_json(metrics_dir / f"{entry}.json", "evaluate")
        read += [details_dir / f"{entry}.json", metrics_dir / f"{entry}.json"]
        for seed in details.get("seeds", []):
            figures = contracts.rounded_figures(seed.get("metrics") or {})
            per_seed[(entry, int(seed["seed"]))] = figures
        base_seed = sweep.for_entry(entry)[0].seed
        spread[entry] = (
            base_seed,
            {k: v for k, v in headline.items() if k.endswith(("_mean", "_std", "_se"))},
        )
    best = contracts.read_stage_json(reports_dir / contracts.BEST_FILE, "report")
    said = contracts.read_summary(reports_dir)
    by_rate = reports_dir / "plots" / "error_vs_rate.csv"  # the DVC plots' rate axis
    rates = (
        pd.read_csv(by_rate).drop_duplicates("entry").set_index("entry")
        if by_rate.is_file()
        else pd.DataFrame(columns=["l2_rate", "log10_rate"])
    )
    ranked = pd.read_csv(reports_dir / "sweep.csv")["entry"].astype(str)
    artifacts = [(reports_dir / name, None) for name in REPORT_FILES]
    artifacts += [(png, "plots") for png in sorted((reports_dir / "plots").glob("*.png"))]
    for path, _ in artifacts:
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro report`")
    read += [reports_dir / contracts.BEST_FILE]  # decision.json is among the artifacts
    read += [path for path, _ in artifacts]
    read += [by_rate] if by_rate.is_file() else []
    return SweepResults(
        per_seed=per_seed,
        # After the links: what was done to the data (the report's first paragraph).
        said=(said.data_note,) if said.data_note else (),
        spread=spread,
        log10_rates={str(e): float(x) for e, x in rates["log10_rate"].items()},
        rate_labels={str(e): rate_label(float(r), str(e)) for e, r in rates["l2_rate"].items()},
        best=best,
        chosen=said.chosen_entry,
        verdict=said.verdict,
        entries=tuple(ranked),
        artifacts=tuple(artifacts),
        digest=files_digest(read),
        task=task_named(said.task),
    )


def files_digest(paths: list[Path]) -> str:
    """SHA-256 over the names and bytes of `paths`: equal digests, equal results."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def record(models_dir: Path, metrics_dir: Path, details_dir: Path, reports_dir: Path) -> None:
    from pipeline.tracking import results, runs, store, views

    if store.uses_default_store() and not (store.project_root() / "mlflow.db").is_file():
        # A fresh clone that pulled its models: no run to complete, and no store to make.
        log.info("no MLflow store yet: nothing to record")
        return
    uri = store.connect()
    sweeps = runs.sweeps_of_models(models_dir, uri)
    if not sweeps:
        return
    found = read_results(models_dir, metrics_dir, details_dir, reports_dir)
    pending = [sweep for sweep in sweeps if not results.is_recorded(sweep, found)]
    for sweep in pending:
        results.record_results(sweep, found)
    log.info(
        "results in %d MLflow parent run(s) of these models (%d just completed)",
        len(sweeps),
        len(pending),
    )
    latest = sweeps[0]
    table = views.view_link(latest.experiment_id, views.sweep_view_key(latest.parent_id))
    chart = views.view_link(
        latest.experiment_id, views.sweep_chart_key(latest.parent_id), chart=True
    )
    log.info(
        "the sweep in MLflow, best on validation first (with `mlflow ui` running): %s",
        views.absolute(table, uri),
    )
    log.info(
        "its chart of %s vs L2 rate: %s", views.figure_words(found.task), views.absolute(chart, uri)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--details", type=Path, default=Path("evaluation"))
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    run_stage("record", lambda: record(args.models, args.metrics, args.details, args.reports))


if __name__ == "__main__":
    main()

"""A sweep's final results into its MLflow runs: each model's final metrics into its run, the
report (table, plots, best entry, links) into the parent run.

DVC skips `evaluate` and `report` whenever their outputs would come out the same: in a fresh
clone with the committed reports, or after `dvc repro -f train` retrains bit-identical models.
The parent run that the new `train` made would then never get them, so one cheap stage
(`record`, which DVC runs on every `dvc repro`) copies the files those stages wrote into every
parent run of the same models. A parent already holding these exact files (tag
`RESULTS_DIGEST_TAG`) is left alone: a repeat costs one search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from pipeline.core.task import Task
from pipeline.tracking import records, views
from pipeline.tracking.runs import NOTE_TAG, FoundSweep

# The digest of the result files a parent run holds (SweepResults.digest).
RESULTS_DIGEST_TAG = "results_digest"


@dataclass(frozen=True)
class SweepResults:
    """What `evaluate` and `report` wrote for one models/ folder, ready to log."""

    per_seed: Mapping[tuple[str, int], Mapping[str, float]]  # (entry, seed) -> final metrics
    # entry -> (base seed, its mean and std over the seeds), with `base.repeat_seeds`
    spread: Mapping[str, tuple[int, Mapping[str, float]]]
    # entry -> log10 of its rate (rate 0 a decade below the smallest), for entries with one
    log10_rates: Mapping[str, float]
    rate_labels: Mapping[str, str]  # entry -> the chart's x (views.rate_label), same entries
    best: Mapping[str, object]  # reports/best.json: best_entry and the figures, numbers only
    chosen: str | None  # the entry the report chose (None: every entry diverged)
    verdict: str | None  # the decision in one line, the description's first
    said: tuple[str, ...]  # sentences after the links: what was done to the data
    entries: tuple[str, ...]  # ranked on validation error
    artifacts: tuple[tuple[Path, str | None], ...]  # (file, folder in the parent's artifacts)
    digest: str  # over every file the above were read from
    task: Task  # core/task.py: the figures the views sort and chart by


def is_recorded(sweep: FoundSweep, results: SweepResults) -> bool:
    return sweep.tags.get(RESULTS_DIGEST_TAG) == results.digest


def prune_sweep_views(client: MlflowClient, experiment_id: str) -> list[str]:
    """Delete the lab's sweep views beyond the newest `views.SWEEP_VIEWS_KEPT` in this
    experiment; returns the deleted tags. Older sweeps' links then open the runs page with
    MLflow's notice that the share key does not exist."""
    tags = client.get_experiment(experiment_id).tags
    stale = views.stale_sweep_views(tags)
    for tag in stale:
        client.delete_experiment_tag(experiment_id, tag)
    return stale


def record_results(sweep: FoundSweep, results: SweepResults) -> str:
    """Log `results` into the runs of `sweep` and save its view; returns the view's key.

    The digest tag goes last, so a record cut short is done again next time.
    """
    _record_models(sweep, results)
    best_figures = {
        k: v
        for k, v in results.best.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    records.log_metrics(sweep.parent_id, {**best_figures, "n_entries": len(results.entries)})
    for path, folder in results.artifacts:
        records.log_artifact(sweep.parent_id, path, folder=folder)
    key = _save_views(sweep, results.task)
    children = [sweep.run_of(entry, seed) for entry, seed in results.per_seed]
    note = views.description(
        results.chosen,
        results.verdict,
        sweep.experiment_id,
        sweep.parent_id,
        [run_id for run_id in children if run_id],
        results.task,
    )
    note += "".join(f"\n\n{sentence}" for sentence in results.said)
    best_entry = str(results.best["best_entry"])
    records.set_tags(
        sweep.parent_id,
        {"best_entry": best_entry, "sweep_entries": ",".join(results.entries), NOTE_TAG: note},
    )
    records.set_tags(sweep.parent_id, {RESULTS_DIGEST_TAG: results.digest})
    return key


def _record_models(sweep: FoundSweep, results: SweepResults) -> None:
    """Each model run's final metrics, its rate as the chart's x, and whether it was chosen."""
    for (entry, seed), metrics in results.per_seed.items():
        run_id = sweep.run_of(entry, seed)
        if run_id is None:
            continue
        log10_l2 = results.log10_rates.get(entry)
        extra = {} if log10_l2 is None or not metrics else {views.LOG10_L2_METRIC: log10_l2}
        label = results.rate_labels.get(entry)
        records.log_results(
            run_id,
            {**metrics, **extra},
            {} if label is None else {views.RATE_PARAM: label},
            # Every run: a sweep recorded again after its report changed moves the mark.
            {views.CHOSEN_TAG: str(entry == results.chosen).lower()},
        )
    for entry, (seed, spread) in results.spread.items():
        run_id = sweep.run_of(entry, seed)
        if run_id is not None and spread:
            records.log_metrics(run_id, spread)


def _save_views(sweep: FoundSweep, task: Task) -> str:
    """Save the sweep's table and chart views in its experiment; returns the table's key."""
    run_name = sweep.tags.get("mlflow.runName", "sweep")
    client = MlflowClient()
    saved = (
        (views.sweep_view_key, "best on validation",
         views.sweep_view_state(sweep.parent_id, [task.val_figure, task.test_figure], task)),
        (views.sweep_chart_key, f"{views.figure_words(task)} vs L2 rate",
         views.sweep_chart_state(sweep.parent_id, task)),
    )  # fmt: skip
    for key_of, title, state in saved:
        name = f"{run_name} {sweep.parent_id[:8]}: {title}"
        client.set_experiment_tag(
            sweep.experiment_id,
            views.SHARED_VIEW_TAG_PREFIX + key_of(sweep.parent_id),
            views.saved_view(name, state),
        )
    prune_sweep_views(client, sweep.experiment_id)
    return views.sweep_view_key(sweep.parent_id)

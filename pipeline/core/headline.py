"""An entry's DVC metrics (`metrics/<entry>.json`: the figures compared across experiments)
and its line in `evaluate`'s log, from the per-seed figures `evaluate` computed."""

from __future__ import annotations

from pipeline.core import contracts
from pipeline.core.task import Task


def entry_metrics(
    towers: list[contracts.TrainedModel], per_seed: list[dict | None], task: Task, extra=()
) -> dict:
    """The DVC metrics of one entry: the base seed's headline figures (the task's, and
    `extra`'s), rounded, and the task's mean and sample standard deviation over the seeds
    when there are several."""
    from pipeline.core.spread import seed_summary

    diverged = [t.diverged_at_epoch for t in towers if t.diverged_at_epoch is not None]
    if diverged:
        return {"diverged_at_epoch": min(diverged), "n_seeds_diverged": len(diverged)}
    base = per_seed[0]
    headline = {name: contracts.rounded(base[name]) for name in (*task.headline, *extra)}
    if len(per_seed) > 1:
        summary = seed_summary(per_seed, task.spread_metrics())
        headline.update({k: contracts.rounded(v) for k, v in summary.items()})
    return headline


def headline_line(metrics: dict, task: Task) -> str:
    """An entry's headline figures in one log line (classification's errors to 3 decimals,
    a regression's RMSE, in the target's units, to 4 significant digits)."""
    if "diverged_at_epoch" in metrics:
        return f"diverged at epoch {metrics['diverged_at_epoch']}"
    short, form = ("err", ".3f") if task.figure == "error" else (task.figure, ".4g")
    choice = "err" if task.choice == "error" else task.choice.upper()
    text = "  ".join(
        f"{split}_{short} {metrics[task.of(split)]:{form}}" for split in ("train", "val", "test")
    )
    text += f"  L2 penalty {metrics['l2_penalty']:.4f}"
    if task.cv_mean in metrics:
        text += (
            f"  ({metrics['n_folds']}-fold CV {choice} {metrics[task.cv_mean]:{form}}"
            f" ± {metrics[task.cv_se]:{form}})"
        )
    if "n_seeds" in metrics:
        val = task.val_figure
        text += (
            f"  (over {metrics['n_seeds']} seeds: val_{short} {metrics[f'{val}_mean']:{form}}"
            f" ± {metrics[f'{val}_std']:{form}})"
        )
    return text

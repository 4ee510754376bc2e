"""Refine the best L2 rate automatically: bracket it, add the bracket to the sweep, repeat.

`python -m pipeline.refine --rounds 3` runs up to three DVC experiments in the workspace, one
after the other. Each adds the new rates of the bracket around the current best
(choosing.next_rates) to the sweep as it stands, as all-layers entries (`l2_<rate>`; when
fine-tuning chose an `l2_sp` entry, `l2_sp_<rate>` with `l2_sp`): your
entries, the grid's and earlier rounds' stay, so every round's decision compares every rate
tried, with paired tests on the same rows, under the same seeds. Each round lands in MLflow
under its own parent run (`sweep refine_<k>`). It stops early when the best rate can no
longer be told apart from its neighbours (the Decision table: the judge's paired test,
adjusted over all its comparisons, choosing/judge.py): a finer bracket would only fit noise.
A round adds only the sides of the bracket whose neighbour the best rate is told apart from.

Choices are made on validation figures only (the task's: error, or MSE for a regression), as
in the report: each round reads the decision refit made (refit/decision.json). Each round rewrites
params.yaml, dvc.lock and the stage outputs git tracks (metrics/, reports/), so refine
refuses to start, changing nothing, while any of them has uncommitted changes: commit or
stash them first. The workspace is left with the last round's params (the grown sweep) and
results; `dvc exp show` lists every round, and `git checkout -- . && dvc checkout` returns
to the commit (git holds every edit, since none was uncommitted).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from ruamel.yaml import YAML

from pipeline import choosing
from pipeline.choosing.next_rates import (
    NO_DIFFERENCE,
    OFF_AXIS,
    Bracket,
    bracket,
    on_axis,
    sweep_additions,
)
from pipeline.choosing.points import L2_SP
from pipeline.config import load_config, resolve_entries
from pipeline.core import contracts
from pipeline.core.errors import DataError, LabError
from pipeline.core.runner import run_stage
from pipeline.core.task import task_named
from pipeline.reporting import readers, table
from pipeline.reporting.decision import on_squared_errors

log = logging.getLogger(__name__)

# round number, the entries the round adds to the sweep (name -> rate), the key of their
# rate (`l2` or `l2_sp`) -> runs its experiment
Runner = Callable[[int, Mapping[str, float], str], None]


def read_points(
    params: Path, metrics: Path, details: Path, prepared: Path, refit: Path,
    models: Path = Path("models"),
):  # fmt: skip
    """The workspace's entries on the choosing axes (the task's figures: meta.json), the
    decision refit made over them (refit/decision.json), which judges every pair refine asks,
    and the name of every entry of the sweep (the grid's included). A model other than the
    built-in MLP (a start model's, a convnet, a builder's) has its layers in `models`'
    sweep record, which `train` wrote."""
    config = load_config(params)
    record = None if config.model.is_mlp else contracts.read_sweep_record(models)
    meta = contracts.read_meta(prepared)
    task = task_named(meta.task)
    entries = resolve_entries(config, record)
    fine_tuning = record is not None and record.from_file
    sweep = table.sweep_table(entries, metrics, details, task, fine_tuning)
    points = choosing.place(
        entries,
        sweep,
        config.data.effective_train_subset,
        config.data.effective_label_noise,
        meta.pool_rows,
        task,
    )
    # With folds: the mean CV figures (place) and the pooled held-out folds' predictions.
    judge = readers.read_judge(details, cross_validated=bool(config.choose.folds))
    points = [p for p in points if p.rows is not None or judge.has(p.entry)]  # as analyse
    found = contracts.read_decision(refit)
    decision = None if found is None else choosing.Decision.from_json(found)
    if decision is not None and decision.chosen.name not in set(sweep["entry"]):
        raise DataError(f"{refit / contracts.DECISION_FILE}: stale; run `dvc repro refit`")
    return points, decision, [entry.name for entry in entries]


def refine(rounds: int, read: Callable[[], tuple], run: Runner) -> list[float]:
    """Up to `rounds` experiments; returns the best rate after the last one."""
    for k in range(1, rounds + 1):
        points, decision, names = read()
        # The report's own bracket: its pairs judged by the decision's table (Holm-adjusted).
        around = bracket(points, decision, names)
        if around is None:
            raise LabError("no entry with one L2 rate on every layer: nothing to refine")
        if stopped(k, around, decision):
            break
        log.info(
            "round %d: chosen %s%g; adding %s to the sweep's %d entries", k,
            "l2_sp " if around.axis == L2_SP else "", around.best.rate,
            ", ".join(f"{name} ({rate:g})" for name, rate in around.added), len(names),
        )  # fmt: skip
        run(k, dict(around.added), around.axis)
    points, decision, _ = read()
    # The lowest on the chosen entry's axis (l2, or fine-tuning's l2_sp).
    best = choosing.next_rates(on_axis(points, decision)[1] if decision else points)[0]
    # The points carry the headline figure: error, or a regression's RMSE.
    word = "RMSE" if decision is not None and on_squared_errors(decision) else "error"
    spread = f" ± {best.val_std:.3f}" if best.val_std else ""
    log.info(
        "refined best rate: %g (val %s %.3f%s, %s)", best.rate, word, best.val, spread, best.entry
    )
    return [best.rate]


def stopped(k: int, around: Bracket, decision: choosing.Decision) -> bool:
    """Whether round `k` trains nothing, saying why in one log line."""
    if around.held == NO_DIFFERENCE:
        zero = decision.against_zero
        log.info(
            "round %d: L2 makes no measurable difference (rate 0 cannot be told apart from %s, "
            "%s-adjusted p = %.3g): no bracket could change that; stop",
            k, decision.chosen.name, decision.correction, zero.p_adjusted,
        )  # fmt: skip
    elif around.held == OFF_AXIS:
        log.info(
            "round %d: the chosen entry %s is not one rate on all layers: no rate to bracket; "
            "stop", k, decision.chosen.name,
        )  # fmt: skip
    elif around.tied and not around.apart:
        log.info(
            "round %d: the chosen rate %g cannot be told apart from its neighbours (%s-adjusted "
            "p %s); stop", k, around.best.rate, decision.correction,
            ", ".join(f"{n.comparison.p_adjusted:.3g}" for n in around.tied),
        )  # fmt: skip
    elif not around.proposed:
        log.info(
            "round %d: every rate of the bracket around %g is tried; stop", k, around.best.rate
        )
    return not around.proposed


def uncommitted_outputs(dvc_yaml: Path) -> list[str]:
    """Files a workspace `dvc exp run` rewrites that git tracks with uncommitted changes:
    params.yaml, dvc.lock and every output of `dvc_yaml` that git tracks (cache: false)."""
    stages = YAML(typ="safe", pure=True).load(dvc_yaml.read_text())["stages"]
    paths = {"params.yaml", "dvc.lock"}
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            paths |= {
                next(iter(out)) if isinstance(out, dict) else out for out in stage.get(kind, [])
            }
    # Outputs DVC caches are git-ignored, never listed here: `dvc checkout` restores them.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", *sorted(paths)],
        cwd=dvc_yaml.parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if status.returncode != 0:
        raise LabError(f"`git status` failed: {status.stderr.strip()}")
    return [line[3:] for line in status.stdout.splitlines()]


def refuse_uncommitted(dvc_yaml: Path) -> None:
    """Stop before anything runs if a round would overwrite an uncommitted edit."""
    changed = uncommitted_outputs(dvc_yaml)
    if changed:
        raise LabError(
            f"{', '.join(changed)}: uncommitted changes that each round's `dvc exp run` would"
            " overwrite; commit them (git commit) or stash them (git stash), then run refine again"
        )


def dvc_experiment(k: int, added: Mapping[str, float], axis: str) -> None:
    """`dvc exp run` in the workspace that adds `added` (rates of `axis`: l2 or l2_sp) to the
    sweep as it stands: it rewrites params.yaml, dvc.lock and the outputs
    (`refuse_uncommitted` runs first)."""
    command = ["dvc", "exp", "run", "-n", f"refine_{k}"]
    for value in sweep_additions(added, axis):
        command += ["-S", value]
    log.info("%s", " ".join(command))
    if subprocess.run(command, check=False).returncode != 0:
        raise LabError(f"`{' '.join(command)}` failed; see its output above")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--details", type=Path, default=Path("evaluation"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--refit", type=Path, default=Path("refit"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    args = parser.parse_args(argv)

    def read():
        return read_points(
            args.params, args.metrics, args.details, args.prepared, args.refit, args.models
        )

    def body() -> None:
        refuse_uncommitted(Path("dvc.yaml"))
        refine(args.rounds, read, dvc_experiment)

    run_stage("refine", body)


if __name__ == "__main__":
    main()

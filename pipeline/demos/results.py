"""The demonstration's figures, read from one target lab's own outputs: the decision refit
made (refit/decision.json: every candidate's CV figure and SE, the paired tests against the
chosen entry, the refit's test interval), evaluate's metrics (metrics/<entry>.json: the test
error) and their details (evaluation/<entry>.json: the distances from the start). Nothing is
recomputed but each entry's 95% test interval, by the lab's own Wilson interval
(choosing/statistics.py) over its test rows."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.choosing.statistics import error_interval
from pipeline.demos.sweep_design import SEED, Entry

log = logging.getLogger(__name__)

# evaluate's names for the distance from the start (per layer with a start, and their sum)
DISTANCE = re.compile(r"^(sq_dist_|rel_dist_)\w+$|^sum_sq_dist$|^l2_sp_penalty$")


@dataclass(frozen=True)
class EntryResult:
    target: str
    approach: str
    entry: str
    rate: float | None
    cv_error: float  # the decision's figure (mean over folds)
    cv_se: float
    test_error: float  # the entry's model trained on the training split
    test_ci_low: float
    test_ci_high: float
    chosen: bool
    holm_p: float | None  # against the chosen entry (None: it is the chosen one)
    told_apart: bool | None
    # evaluate's sq_dist_<layer>, rel_dist_<layer>, sum_sq_dist, l2_sp_penalty (base seed)
    distances: dict[str, float]


def read_decision(lab: Path) -> dict:
    decision = json.loads((lab / "refit" / "decision.json").read_text())["decision"]
    if decision is None:
        raise RuntimeError(f"{lab}: the lab chose nothing (every entry diverged)")
    return decision


def entry_results(lab: Path, target: str, entries: tuple[Entry, ...]) -> list[EntryResult]:
    decision = read_decision(lab)
    chosen = decision["choice"]["chosen"]
    candidates = {chosen["name"]: (chosen, None)}
    for comparison in decision["comparisons"]:
        candidates[comparison["other"]["name"]] = (comparison["other"], comparison)
    n_test = decision["test_rows"]
    found = []
    for entry in entries:
        if entry.name not in candidates:  # diverged, or no held-out predictions
            log.warning("%s: %s is no candidate of the decision; left out", target, entry.name)
            continue
        candidate, comparison = candidates[entry.name]
        metrics = json.loads((lab / "metrics" / f"{entry.name}.json").read_text())
        details = _base_seed_details(lab, entry.name)
        wrong = round(metrics["test_error"] * n_test)  # 5 significant digits: exact count
        low, high = error_interval(wrong, n_test)
        found.append(
            EntryResult(
                target=target,
                approach=entry.approach,
                entry=entry.name,
                rate=entry.rate,
                cv_error=candidate["value"],
                cv_se=candidate["se"],
                test_error=metrics["test_error"],
                test_ci_low=low,
                test_ci_high=high,
                chosen=comparison is None,
                holm_p=None if comparison is None else comparison["p_adjusted"],
                told_apart=None if comparison is None else comparison["apart"],
                distances={k: v for k, v in details.items() if DISTANCE.match(k)},
            )
        )
    return found


def _base_seed_details(lab: Path, entry: str) -> dict[str, float]:
    """evaluation/<entry>.json's figures of the entry's base-seed model (per layer: the
    distances from the start are there, metrics/<entry>.json has only their sum)."""
    details = json.loads((lab / "evaluation" / f"{entry}.json").read_text())
    (base,) = [s for s in details["seeds"] if s["seed"] == SEED]
    return base["metrics"]


def best_per_approach(results: list[EntryResult]) -> list[EntryResult]:
    """Each approach's entry with the lowest CV error (the first, lowest rate, on a tie)."""
    best: dict[str, EntryResult] = {}
    for result in results:
        if result.approach not in best or result.cv_error < best[result.approach].cv_error:
            best[result.approach] = result
    return list(best.values())


def summary(lab: Path, target: str, results: list[EntryResult]) -> dict:
    """The target's decision in brief, with the refit's answer, and every entry's figures."""
    decision = read_decision(lab)
    return {
        "target": target,
        "chosen": decision["choice"]["chosen"]["name"],
        "rule": decision["choice"]["rule"],
        "figure": decision["figure"],
        "folds": decision["folds"],
        "held_out_rows": decision["n_rows"],
        "test_rows": decision["test_rows"],
        "paired_test": decision["test"],
        "correction": decision["correction"],
        "alpha": decision["alpha"],
        "refit": decision["refit"],
        "entries": [asdict(r) for r in results],
    }

"""(a) the sweep under DVC: a cold `dvc repro -f` of this layout and of an older one."""

from __future__ import annotations

import logging
from pathlib import Path

from ruamel.yaml import YAML

from benchmarks.harness import ROOT, Project, old_worktree

log = logging.getLogger("bench")


def cold_repro(work: Path, name: str, source: Path, params: dict) -> dict:
    project = Project(work / name, source, params)
    log.info("(a) cold `dvc repro -f` of the %s layout ...", name)
    seconds = project.dvc("repro", "-f")
    stages = project.take_stage_records()
    by_kind: dict[str, dict[str, float]] = {}
    for stage in stages:
        kind = by_kind.setdefault(stage["stage"].split("@")[0], {"seconds": 0.0, "peak_mib": 0})
        kind["seconds"] += stage["seconds"]
        kind["peak_mib"] = max(kind["peak_mib"], stage["peak_rss_mib"])
        kind["processes"] = kind.get("processes", 0) + 1
    log.info("(a) %s layout: %.1f s in %d stage processes", name, seconds, len(stages))
    return {
        "cold_repro_s": seconds,
        "stage_processes": len(stages),
        "outside_stages_s": seconds - sum(s["seconds"] for s in stages),
        "by_stage": by_kind,
        "stages": stages,
    }


def known_to(template: dict, params: dict) -> dict:
    """`params` without the sections and keys an older params.yaml (`template`) lacks (e.g.
    `grid:`), which its validation refuses; the sweep's entries are kept whole. The digits
    demo's `data.digits:` settings go where an older file had them, directly in `data:`."""
    demo = params.get("data", {}).get("digits")
    if demo is not None and "digits" not in template.get("data", {"digits": None}):
        params = {**params, "data": {**params["data"], **demo}}
    return {
        key: value
        if key == "sweep" or not isinstance(value, dict)
        else known_to(template[key], value)
        for key, value in params.items()
        if key in template
    }


def bench_sweep(work: Path, params: dict, old_revision: str) -> dict:
    """Both layouts' cold runs; the ratios to pure training are added by `add_training_ratios`."""
    new = cold_repro(work, "new", ROOT, params)
    with old_worktree(old_revision, work / "old-worktree") as source:
        template = YAML(typ="safe").load((source / "params.yaml").read_text())
        old = cold_repro(work, "old", source, known_to(template, params))
    return {
        "entries": len(params["sweep"]),
        "epochs": params["train"]["epochs"],
        "old_revision": old_revision,
        "new": new,
        "old": old,
        "new_vs_old": new["cold_repro_s"] / old["cold_repro_s"],
    }


def add_training_ratios(sweep: dict, fits: dict) -> None:
    pure = fits["default"]["alone_total_s"]
    sweep["pure_training_s"] = pure
    sweep["new_vs_pure_training"] = sweep["new"]["cold_repro_s"] / pure
    sweep["old_vs_pure_training"] = sweep["old"]["cold_repro_s"] / pure

"""The model store benchmark's table: each figure, its same-run baseline, the ratio and the
issue's target (benchmarks/reuse.py)."""

from __future__ import annotations

FASTER_TARGET = 3.0  # an added entry against today's full retrain
ALONE_TARGET = 1.5  # an added entry against the pipeline on that entry alone
OVERHEAD_TARGET = 0.02  # keying and looking up on a first run, share of `train`

HEADER = [
    "| measure | value | baseline (same run) | ratio | target |",
    "|---|---|---|---|---|",
]


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _trained(run: dict) -> str:
    return f"trained {run['trained']} of {run['models']} models"


def _train_stage(reused: dict, baseline: dict, label: str) -> str:
    a, b = reused["stages_s"]["train"], baseline["stages_s"]["train"]
    return f"| — its `train` stage | {a:.1f} s | {label}: {b:.1f} s | {b / a:.1f}x faster | |"


def _same_outputs(part: dict) -> str:
    same = part["reused"]["lock"] == part["retrained"]["lock"]
    return "identical" if same else "**differ**"


def entry_rows(e: dict) -> list[str]:
    reused, retrained, alone = e["reused"], e["retrained"], e["alone"]
    faster = retrained["repro_s"] / reused["repro_s"]
    versus_alone = reused["repro_s"] / alone["repro_s"]
    return [
        f"| (1) one entry added to the default sweep, `dvc repro`: {_trained(reused)} | "
        f"{reused['repro_s']:.1f} s | `L2LAB_RETRAIN=1`, {_trained(retrained)}: "
        f"{retrained['repro_s']:.1f} s | **{faster:.1f}x faster** | at least "
        f"{FASTER_TARGET:g}x: {_met(faster >= FASTER_TARGET)} |",
        _train_stage(reused, retrained, "`L2LAB_RETRAIN=1`"),
        f"| (1) the same edit | {reused['repro_s']:.1f} s | the new entry alone (a sweep of "
        f"that entry, `dvc repro -f`, empty store), {_trained(alone)}: {alone['repro_s']:.1f} s "
        f"| **{versus_alone:.2f}x** the time | within {ALONE_TARGET:g}x: "
        f"{_met(versus_alone <= ALONE_TARGET)} |",
        f"| — its `train` stage | {reused['stages_s']['train']:.1f} s | alone: "
        f"{alone['stages_s']['train']:.1f} s | "
        f"{reused['stages_s']['train'] / alone['stages_s']['train']:.2f}x the time | |",
        f"| (1) `dvc.lock` after the edit with the store | {_same_outputs(e)} | after the full "
        "retrain | | byte-identical |",
    ]


def grid_rows(g: dict) -> list[str]:
    first, reused, retrained = g["first"], g["reused"], g["retrained"]
    new = retrained["models"] - first["models"]
    faster = retrained["repro_s"] / reused["repro_s"]
    return [
        f"| (2) a rate added to the {first['models']}-model layer grid, `dvc repro`: "
        f"{_trained(reused)} | {reused['repro_s']:.1f} s | `L2LAB_RETRAIN=1`, "
        f"{_trained(retrained)}: {retrained['repro_s']:.1f} s | **{faster:.1f}x faster** | "
        f"only the {new} new models: {_met(reused['trained'] == new)} |",
        _train_stage(reused, retrained, "`L2LAB_RETRAIN=1`"),
        f"| (2) `dvc.lock` after the edit with the store | {_same_outputs(g)} | after the full "
        "retrain | | byte-identical |",
    ]


def _runs(run: dict) -> str:
    trained = sum(r["trained"] for r in run["runs"])
    models = sum(r["models"] for r in run["runs"])
    per_round = ", ".join(str(r["trained"]) for r in run["runs"])
    return f"trained {trained} of {models} models ({per_round} per round)"


def refine_rows(f: dict) -> list[str]:
    reused, retrained = f["reused"], f["retrained"]
    rounds = len(reused["rounds"])
    if not rounds:
        stop = "; ".join(reused["stopped"]) or "no round line"
        return [f"| (3) `python -m pipeline.refine` trained no round: {stop} | | | | |"]
    faster = retrained["refine_s"] / reused["refine_s"]
    same = reused["rounds"] == retrained["rounds"] and reused["lock"] == retrained["lock"]
    rows = [
        f"| (3) `python -m pipeline.refine --rounds 3` on the default sweep, {rounds} rounds: "
        f"{_runs(reused)} | {reused['refine_s']:.1f} s | `L2LAB_RETRAIN=1`, "
        f"{_runs(retrained)}: {retrained['refine_s']:.1f} s | **{faster:.1f}x faster** | "
        "a ratio against today |",
        f"| — its `train` stages | {reused['train_s']:.1f} s | `L2LAB_RETRAIN=1`: "
        f"{retrained['train_s']:.1f} s | {retrained['train_s'] / reused['train_s']:.1f}x "
        "faster | |",
    ]
    if not same:
        rows.append("| (3) **the two refines differ** in their rounds or last `dvc.lock` | | | | |")
    return rows


def overhead_rows(o: dict, first: dict) -> list[str]:
    train = first["stages_s"]["train"]
    share = o["key_and_look_up_s"] / train
    return [
        f"| (4) keying the default sweep's {o['models']} models and looking them up (a first "
        f"run: an empty store) | {o['key_and_look_up_s'] * 1000:.0f} ms | that run's `train` "
        f"stage: {train:.1f} s | **{share:.2%}** | under {OVERHEAD_TARGET:.0%}: "
        f"{_met(share < OVERHEAD_TARGET)} |",
        f"| — writing the {o['models']} models into the store | {o['store_s'] * 1000:.0f} ms | "
        f"the same: {train:.1f} s | {o['store_s'] / train:.2%} | |",
    ]


def table(results: dict) -> str:
    rows = list(HEADER)
    if "entry" in results:
        rows += entry_rows(results["entry"])
    if "grid" in results:
        rows += grid_rows(results["grid"])
    if "refine" in results:
        rows += refine_rows(results["refine"])
    if "overhead" in results.get("entry", {}):
        rows += overhead_rows(results["entry"]["overhead"], results["entry"]["first"])
    return "\n".join(rows)

"""The model store benchmark's table (each figure, its same-run baseline and the ratio, as
docs/reuse.md quotes it) and its targets, each with whether the run meets it
(benchmarks/reuse.py)."""

from __future__ import annotations

FASTER_TARGET = 3.0  # an added entry against today's full retrain
ALONE_TARGET = 1.5  # an added entry against the pipeline on that entry alone
OVERHEAD_TARGET = 0.02  # keying and looking up on a first run, share of `train`

HEADER = ["| measure | value | baseline (same run) | ratio |", "|---|---|---|---|"]


def _trained(run: dict) -> str:
    return f"trained {run['trained']} of {run['models']} models"


def _train_stage(reused: dict, baseline: dict, label: str) -> str:
    a, b = reused["stages_s"]["train"], baseline["stages_s"]["train"]
    return f"| — its `train` stage | {a:.1f} s | {label}: {b:.1f} s | {b / a:.1f}x faster |"


def _rest(reused: dict, baseline: dict, label: str) -> str:
    """The time outside `train`: the other stages and DVC itself, which reuse does not shorten."""
    a = reused["repro_s"] - reused["stages_s"]["train"]
    b = baseline["repro_s"] - baseline["stages_s"]["train"]
    return (
        f"| — the rest: the other stages and DVC | {a:.1f} s | {label}: {b:.1f} s | "
        f"{a / b:.2f}x the time |"
    )


def _same_outputs(part: dict) -> bool:
    return part["reused"]["lock"] == part["retrained"]["lock"]


def _lock_row(part: dict, number: int) -> str:
    same = "identical" if _same_outputs(part) else "**differ**"
    return f"| ({number}) `dvc.lock` after the edit with the store | {same} | after the retrain | |"


def entry_rows(e: dict) -> list[str]:
    reused, retrained, alone = e["reused"], e["retrained"], e["alone"]
    faster = retrained["repro_s"] / reused["repro_s"]
    versus_alone = reused["repro_s"] / alone["repro_s"]
    a, b = reused["stages_s"]["train"], alone["stages_s"]["train"]
    return [
        f"| (1) one entry added to the default sweep, `dvc repro`: {_trained(reused)} | "
        f"{reused['repro_s']:.1f} s | `L2LAB_RETRAIN=1`, {_trained(retrained)}: "
        f"{retrained['repro_s']:.1f} s | **{faster:.1f}x faster** |",
        _train_stage(reused, retrained, "`L2LAB_RETRAIN=1`"),
        _rest(reused, retrained, "`L2LAB_RETRAIN=1`"),
        f"| (1) the same edit | {reused['repro_s']:.1f} s | the new entry alone (a sweep of "
        f"that entry, `dvc repro -f`, empty store), {_trained(alone)}: {alone['repro_s']:.1f} s "
        f"| **{versus_alone:.2f}x** the time |",
        f"| — its `train` stage | {a:.1f} s | alone: {b:.1f} s | {a / b:.2f}x the time |",
        _rest(reused, alone, "alone"),
        _lock_row(e, 1),
    ]


def grid_rows(g: dict) -> list[str]:
    first, reused, retrained = g["first"], g["reused"], g["retrained"]
    faster = retrained["repro_s"] / reused["repro_s"]
    return [
        f"| (2) a rate added to the {first['models']}-model layer grid, `dvc repro`: "
        f"{_trained(reused)} | {reused['repro_s']:.1f} s | `L2LAB_RETRAIN=1`, "
        f"{_trained(retrained)}: {retrained['repro_s']:.1f} s | **{faster:.1f}x faster** |",
        _train_stage(reused, retrained, "`L2LAB_RETRAIN=1`"),
        _rest(reused, retrained, "`L2LAB_RETRAIN=1`"),
        _lock_row(g, 2),
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
        return [f"| (3) `python -m pipeline.refine` trained no round: {stop} | | | |"]
    faster = retrained["refine_s"] / reused["refine_s"]
    rows = [
        f"| (3) `python -m pipeline.refine --rounds 3` on the default sweep, {rounds} "
        f"round{'s' * (rounds != 1)}: "
        f"{_runs(reused)} | {reused['refine_s']:.1f} s | `L2LAB_RETRAIN=1`, "
        f"{_runs(retrained)}: {retrained['refine_s']:.1f} s | **{faster:.1f}x faster** |",
        f"| — its `train` stages | {reused['train_s']:.1f} s | `L2LAB_RETRAIN=1`: "
        f"{retrained['train_s']:.1f} s | {retrained['train_s'] / reused['train_s']:.1f}x "
        "faster |",
    ]
    if not _same_refines(f):
        rows.append("| (3) **the two refines differ** in their rounds or last `dvc.lock` | | | |")
    return rows


def _same_refines(f: dict) -> bool:
    reused, retrained = f["reused"], f["retrained"]
    return reused["rounds"] == retrained["rounds"] and reused["lock"] == retrained["lock"]


def overhead_rows(o: dict, first: dict) -> list[str]:
    train = first["stages_s"]["train"]
    return [
        f"| (4) keying the default sweep's {o['models']} models and looking them up (a first "
        f"run: an empty store) | {o['key_and_look_up_s'] * 1000:.0f} ms | that run's `train` "
        f"stage: {train:.1f} s | **{o['key_and_look_up_s'] / train:.2%}** |",
        f"| — writing the {o['models']} models into the store | {o['store_s'] * 1000:.0f} ms | "
        f"the same: {train:.1f} s | {o['store_s'] / train:.2%} |",
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


def targets(results: dict) -> list[str]:
    """Each target the run measured, with its figure and whether the run meets it."""
    found = []

    def check(ok: bool, text: str) -> None:
        found.append(f"{'met' if ok else 'NOT MET'}: {text}")

    if "entry" in results:
        e = results["entry"]
        faster = e["retrained"]["repro_s"] / e["reused"]["repro_s"]
        check(faster >= FASTER_TARGET, f"an added entry {FASTER_TARGET:g}x faster than "
              f"L2LAB_RETRAIN=1 ({faster:.2f}x)")  # fmt: skip
        alone = e["reused"]["repro_s"] / e["alone"]["repro_s"]
        check(alone <= ALONE_TARGET, f"an added entry within {ALONE_TARGET:g}x of that entry "
              f"alone ({alone:.2f}x)")  # fmt: skip
        check(
            e["reused"]["trained"] == 1, f"an added entry trains 1 model ({_trained(e['reused'])})"
        )
        check(_same_outputs(e), "(1) dvc.lock byte-identical to the full retrain's")
        if "overhead" in e:
            share = e["overhead"]["key_and_look_up_s"] / e["first"]["stages_s"]["train"]
            check(share < OVERHEAD_TARGET, f"keying and looking up under "
                  f"{OVERHEAD_TARGET:.0%} of a first run's train stage ({share:.2%})")  # fmt: skip
    if "grid" in results:
        g = results["grid"]
        new = g["retrained"]["models"] - g["first"]["models"]
        check(g["reused"]["trained"] == new, f"a grid rate trains only its {new} new models "
              f"({_trained(g['reused'])})")  # fmt: skip
        check(_same_outputs(g), "(2) dvc.lock byte-identical to the full retrain's")
    if results.get("refine", {}).get("reused", {}).get("rounds"):
        check(_same_refines(results["refine"]), "(3) refine's rounds and last dvc.lock the "
              "same with the store as with L2LAB_RETRAIN=1")  # fmt: skip
    return found

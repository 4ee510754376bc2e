"""The model store's measurements: a throwaway project run again after an edit, with the store
and with L2LAB_RETRAIN=1, and the models each run trained (its `train` stage's log line)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.compute_part import layer_grid_params
from benchmarks.harness import ROOT, Project, write_params

log = logging.getLogger("bench")

# The entry added to the default sweep: an eleventh rate, between two it has.
NEW_ENTRY = ("l2_3e_4", {"l2": 0.0003})
# The rate added to the layer grid: 4 entries (all, each of 3 layers) x 3 seeds.
NEW_GRID_RATE = 0.0003
# Settings of the caller's shell that would let a run see another store or retrain.
STORE_SETTINGS = ("L2LAB_MODEL_STORE", "L2LAB_RETRAIN", "L2LAB_MODEL_STORE_MAX_GB")
RETRAIN = {"L2LAB_RETRAIN": "1"}
_TRAINING = re.compile(r"training (?:(\d+) of )?(\d+) models")
_ROUND = re.compile(r"round (\d+): chosen \S+; adding (.*) to the sweep's \d+ entries")
_STOP = re.compile(r"round \d+: .*; stop$", re.M)


def trained_counts(output: str) -> list[dict]:
    """Per `train` run in `output`: the models it trained and the models of the sweep, from its
    line `training 1 of 11 models (...)` (`training 11 models (...)` when it reused none)."""
    return [
        {"trained": int(part or whole), "models": int(whole)}
        for part, whole in _TRAINING.findall(output)
    ]


def refine_rounds(output: str) -> list[list[str]]:
    """The rates each round of `pipeline.refine` trained, from its `round k: ...` lines."""
    return [rates.split(", ") for _, rates in _ROUND.findall(output)]


def with_entry(params: dict) -> dict:
    return {**params, "sweep": {**params["sweep"], NEW_ENTRY[0]: NEW_ENTRY[1]}}


def only_entry(params: dict) -> dict:
    return {**params, "sweep": {NEW_ENTRY[0]: NEW_ENTRY[1]}}


def with_grid_rate(params: dict) -> dict:
    grid = params["grid"]
    return {**params, "grid": {**grid, "rates": sorted({*grid["rates"], NEW_GRID_RATE})}}


def new_project(work: Path, name: str, params: dict) -> Project:
    project = Project(work / name, ROOT, params)
    for setting in STORE_SETTINGS:  # its store is its own `model-store/`
        project.env.pop(setting, None)
    return project


def run(project: Project, *argv: str, env: dict | None = None) -> tuple[float, str]:
    """Run a command in the project; its wall time and its output (stdout, then stderr)."""
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=project.root, env={**project.env, **(env or {})}, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds, done.stdout + done.stderr


def repro(project: Project, *args: str, env: dict | None = None) -> dict:
    """`dvc repro` timed whole (what the user waits for), its stages and the models trained."""
    seconds, output = run(project, project.dvc_bin, "repro", *args, env=env)
    stages = {s["stage"]: s["seconds"] for s in project.take_stage_records()}
    counts = trained_counts(output)
    if len(counts) != 1:
        raise RuntimeError(f"expected one `train` run in `dvc repro`, found {counts}:\n{output}")
    return {
        "repro_s": seconds,
        "stages_s": stages,
        **counts[0],
        "lock": lock_digest(project),
        "warnings": warnings(output),
    }


def warnings(output: str) -> list[str]:
    """The stages' warning lines (a damaged stored model, other bits under one key, ...)."""
    return [line.strip() for line in output.splitlines() if "warning: " in line]


def lock_digest(project: Project) -> str:
    """dvc.lock's sha256: it holds the digest of every output, so equal locks of the same
    params mean byte-identical outputs."""
    return hashlib.sha256((project.root / "dvc.lock").read_bytes()).hexdigest()


def commit(project: Project, message: str) -> None:
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", message)


def back_to_commit(project: Project) -> None:
    """The workspace as committed (params, dvc.lock, outputs) and no run cache: DVC would
    otherwise restore the same stage runs instead of running them. The model store stays."""
    project.run("git", "checkout", "--", ".")
    project.run("git", "clean", "-fdq")  # untracked files only; git-ignored ones stay
    project.dvc("checkout", "-q")
    shutil.rmtree(project.root / ".dvc" / "cache" / "runs", ignore_errors=True)


def edit_twice(project: Project, edited: dict) -> dict:
    """The committed workspace edited to `edited` and reproduced with the store, then again
    from the commit with L2LAB_RETRAIN=1 (today's full retrain)."""
    write_params(project.root / "params.yaml", edited)
    log.info("%s: `dvc repro` after the edit, with the store ...", project.root.name)
    reused = repro(project)
    back_to_commit(project)
    write_params(project.root / "params.yaml", edited)
    log.info("%s: the same with L2LAB_RETRAIN=1 ...", project.root.name)
    retrained = repro(project, env=RETRAIN)
    return {"reused": reused, "retrained": retrained}


def bench_entry(work: Path, params: dict, overhead: bool) -> dict:
    """(1) the default sweep, then one entry added; and (4) keying's overhead, in between."""
    project = new_project(work, "entry", params)
    log.info("(1) the default sweep, cold ...")
    result = {"first": repro(project)}
    commit(project, "default sweep")
    if overhead:
        result["overhead"] = measure_overhead(project, work / "overhead-store")
    result |= edit_twice(project, with_entry(params))
    alone = new_project(work, "alone", only_entry(params))
    log.info("(1) the new entry alone: a first run, then `dvc repro -f` with an empty store ...")
    repro(alone)  # creates MLflow's store: a once-per-project cost the edit does not pay
    shutil.rmtree(alone.root / "model-store")
    result["alone"] = repro(alone, "-f")
    return result


def bench_grid(work: Path, params: dict) -> dict:
    """(2) the layer grid of docs/choosing-l2.md, then one rate added."""
    grid = layer_grid_params(params)
    project = new_project(work, "grid", grid)
    log.info("(2) the layer grid, cold ...")
    result = {"first": repro(project)}
    commit(project, "layer grid")
    return result | edit_twice(project, with_grid_rate(grid))


def refine(project: Project, rounds: int, env: dict | None) -> dict:
    seconds, output = run(
        project, sys.executable, "-m", "pipeline.refine", "--rounds", str(rounds), env=env
    )
    stages = project.take_stage_records()
    return {
        "refine_s": seconds,
        "train_s": sum(s["seconds"] for s in stages if s["stage"] == "train"),
        "rounds": refine_rounds(output),
        "stopped": [line.split("] ", 1)[-1] for line in _STOP.findall(output)],
        "runs": trained_counts(output),
        "lock": lock_digest(project),
        "warnings": warnings(output),
    }


def bench_refine(work: Path, params: dict, rounds: int) -> dict:
    """(3) `pipeline.refine --rounds N` on the default sweep, with the store and with
    L2LAB_RETRAIN=1, both from the same commit (its experiments removed in between)."""
    project = new_project(work, "refine", params)
    log.info("(3) the default sweep, cold ...")
    repro(project)
    commit(project, "default sweep")
    log.info("(3) refine, %d rounds, with the store ...", rounds)
    reused = refine(project, rounds, None)
    back_to_commit(project)
    project.dvc("exp", "remove", "-A")
    log.info("(3) refine, %d rounds, with L2LAB_RETRAIN=1 ...", rounds)
    return {"reused": reused, "retrained": refine(project, rounds, RETRAIN)}


# Keying and looking up as the `train` stage does (pipeline/train.py look_up_models), then
# storing each model, timed apart in a process that has imported TensorFlow as the stage has.
_OVERHEAD = """
import json, sys, time
from pathlib import Path
from pipeline.config import BuilderRef, load_config
from pipeline.core import contracts
from pipeline.core.runtime import init_tensorflow
params, prepared, models = Path("params.yaml"), Path("data/prepared"), Path("models")
config = load_config(params)
init_tensorflow(config.base.seed)
from pipeline.compute.planning import training_set_of
from pipeline.compute.sweep_plan import plan_sweep
from pipeline.model_store import (Fingerprint, ModelStore, StoredModel, forced_retrain,
    ingredients, look_up, store_location, why_retrained)
builder = BuilderRef.of_params(config.model, params)
plan = plan_sweep(config, prepared, builder)
started = time.perf_counter()
fingerprint = Fingerprint.of(config, prepared, builder)
wanted = {t.name: ingredients(fingerprint, config, t.entry, t.seed,
                              training_set_of(t, config.data, plan.meta.pool_rows))
          for t in plan.towers}
store = ModelStore(store_location())
lookup = look_up(store, wanted, forced_retrain())
why_retrained(store, lookup)
keyed = time.perf_counter()
for tower, model in zip(plan.towers, plan.models):
    history = (contracts.model_dir(models, tower.entry.name, None, None)
               / contracts.HISTORY_FILE).read_bytes()
    store.put(lookup.keys[tower.name], StoredModel(model.get_weights(), history, None,
              {"run_id": "x"}, lookup.ingredients[tower.name]))
stored = time.perf_counter()
assert not lookup.found and not store.problems, (lookup.found, store.problems)
print(json.dumps({"models": len(plan.towers), "key_and_look_up_s": keyed - started,
                  "store_s": stored - keyed}))
"""


def measure_overhead(project: Project, store: Path) -> dict:
    """(4) on the project's first run (nothing reusable): keys and look-ups against an
    empty store, and writing every model into it, against that run's `train` stage."""
    _, output = run(project, sys.executable, "-c", _OVERHEAD, env={"L2LAB_MODEL_STORE": str(store)})
    shutil.rmtree(store, ignore_errors=True)
    return json.loads(next(line for line in output.splitlines() if line.startswith('{"models"')))

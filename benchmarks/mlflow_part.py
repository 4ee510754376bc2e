"""(c) MLflow's share of `train`, local store and server; (d) the peak memory of `train`."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import (
    ROOT,
    bench_env,
    mlflow_server,
    run_task,
    with_extra_seeds,
    write_params,
)

log = logging.getLogger("bench")


def warm_store(folder: Path, env: dict, experiment: str) -> None:
    """Create the store and the experiment, as any run after a project's first one finds them."""
    code = f"from pipeline.tracking import store; store.use_experiment({experiment!r})"
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DVC_ROOT": str(folder)},
        check=True,
        capture_output=True,
    )


def train_stage(folder: Path, params: dict, prepared: Path, env: dict) -> dict:
    """The `train` stage body in a fresh process; DVC_ROOT puts the local store in `folder`."""
    folder.mkdir(parents=True)
    write_params(folder / "params.yaml", params)
    env = {**env, "DVC_ROOT": str(folder)}
    warm_store(folder, env, params["base"]["experiment"])
    return run_task(
        "stage", env=env, params=folder / "params.yaml", prepared=prepared, out=folder / "models"
    )


def bench_mlflow(work: Path, params: dict, prepared: Path) -> dict:
    result = {}
    log.info("(c) train stage, local store ...")
    result["sqlite"] = train_stage(work / "stage-sqlite", params, prepared, bench_env())
    with mlflow_server(work / "mlflow-server") as uri:
        log.info("(c) train stage, mlflow server at %s ...", uri)
        result["http"] = train_stage(
            work / "stage-http", params, prepared, bench_env(MLFLOW_TRACKING_URI=uri)
        )
    for run in result.values():
        run["share_of_run"] = run["tracking_s"] / run["run_s"]
        run["share_with_import"] = (run["tracking_s"] + run["mlflow_import_s"]) / (
            run["run_s"] + run["mlflow_import_s"]
        )
    return result


def bench_memory(work: Path, params: dict, prepared: Path, extra_seeds: int, mlflow: dict) -> dict:
    sweep = mlflow.get("sqlite") or train_stage(
        work / "memory-sweep", params, prepared, bench_env()
    )
    log.info("(d) train stage with %d extra seeds ...", extra_seeds)
    seeds = train_stage(
        work / "memory-seeds", with_extra_seeds(params, extra_seeds), prepared, bench_env()
    )
    floor = run_task("imports")
    return {
        "sweep": {"models": sweep["models"], "peak_rss_mib": sweep["peak_rss_mib"]},
        "seeds": {
            "models": seeds["models"],
            "peak_rss_mib": seeds["peak_rss_mib"],
            "run_s": seeds["run_s"],
            "fit_s": seeds["fit_s"],
        },
        "tensorflow_only_peak_rss_mib": floor["peak_rss_mib"],
    }

"""Benchmark the L2 lab against baselines measured in the same run; print a table, write JSON.

    python -m benchmarks.bench            # the default sweep of params.yaml (~10 min on 2 cores)
    python -m benchmarks.bench --quick    # 10 epochs, two entries, one repeat (~3 min)

Every figure is a ratio against a baseline measured in the same run on the same model, data,
seed and epochs, so that a busy machine slows both sides alike. Repeated figures are medians.

1. training: the pipeline's `training.fit` vs a plain `model.fit` on numpy arrays with
   batch_size=32, and vs the compute bound (training FLOPs / measured matmul FLOP/s);
2. sweep: a cold `dvc repro -f` of a throwaway copy of the project vs the sum of its pure
   training times, with the overhead split into imports, DVC, MLflow, evaluation and the rest;
3. `dvc repro` with nothing changed and with one entry changed;
4. peak memory of each stage;
5. MLflow: the time a `train` stage spends in MLflow calls, with the local store and with a
   tracking server over HTTP (`mlflow server`, started here on a free port and stopped after).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ruamel.yaml import YAML

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("training", "sweep", "mlflow")
TARGETS = {
    "training_speedup_vs_plain": 3.0,  # at least
    "sweep_overhead_share": 0.25,  # at most, of pure training time
    "noop_repro_s": 3.0,  # at most
    "mlflow_share_of_run": 0.05,  # at most
}

# A stage process is recorded by this stand-in for `python`, first on PATH under `dvc repro`:
# wall time and peak RSS of each stage, without touching dvc.yaml.
_SHIM = """#!{python}
import json, resource, subprocess, sys, time
started = time.time()
code = subprocess.call([{python!r}, *sys.argv[1:]])
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open({log!r}, "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "seconds": time.time() - started,
                          "peak_rss_mib": peak_kib / 1024, "code": code}}) + "\\n")
sys.exit(code)
"""


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    return yaml


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def run_task(task: str, work: Path, **options: object) -> dict:
    """Run `benchmarks.tasks <task>` in a fresh process; returns its JSON and wall time."""
    result = work / f"task-{time.monotonic_ns()}.json"
    argv = [sys.executable, "-m", "benchmarks.tasks", task, "--result", str(result)]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise RuntimeError(f"task {task} failed:\n{done.stderr[-3000:]}")
    payload = json.loads(result.read_text())
    payload["process_s"] = time.perf_counter() - started
    return payload


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("DVC_ROOT", None)
    env.update(extra)
    return env


def shrink_params(params: dict, quick: bool) -> dict:
    """`--quick`: 10 epochs and the first two sweep entries; the model and data stay as given."""
    if not quick:
        return params
    params = json.loads(json.dumps(params))
    params["train"]["epochs"] = min(10, params["train"]["epochs"])
    params["sweep"] = dict(list(params["sweep"].items())[:2])
    return params


def dense_macs(shapes: Sequence[Sequence[int]]) -> int:
    """Multiply-adds of one forward pass of one sample through Dense kernels of `shapes`."""
    return sum(rows * cols for rows, cols in shapes)


def training_flops_per_sample(shapes: Sequence[Sequence[int]], n_train: int, n_val: int) -> float:
    """FLOPs per training sample: forward (2 per MAC) + backward (4 per MAC), plus the epoch's
    validation forward pass spread over the training samples."""
    macs = dense_macs(shapes)
    return 6 * macs + 2 * macs * n_val / n_train


# -- 1. training ---------------------------------------------------------------------------


def bench_training(work: Path, params: Path, prepared: Path, entry: str, repeats: int) -> dict:
    runs: dict[str, list[dict]] = {"plain": [], "pipeline": []}
    for i in range(repeats):
        seed = 42 + i  # the seed changes between repeats, so the spread of val error is seed noise
        for mode in ("plain", "pipeline"):
            r = run_task(
                "train", work, params=params, prepared=prepared, entry=entry, seed=seed, mode=mode
            )
            runs[mode].append(r)
            log.info("training %-8s seed %d: %.0f samples/s, val_error %.3f",
                     mode, seed, r["samples_per_s"], r["val_error"])  # fmt: skip
    matmul = run_task("matmul", work, repeats=5)["flops_per_s"]
    first = runs["pipeline"][0]
    per_sample = training_flops_per_sample(first["dense_shapes"], first["n_train"], first["n_val"])
    bound = matmul["1024x1024x1024"] / per_sample
    pipeline_speed = median([r["samples_per_s"] for r in runs["pipeline"]])
    plain_speed = median([r["samples_per_s"] for r in runs["plain"]])
    speedups = [
        p["samples_per_s"] / q["samples_per_s"]
        for p, q in zip(runs["pipeline"], runs["plain"], strict=True)
    ]
    return {
        "entry": entry,
        "epochs": first["epochs"],
        "runs": runs,
        "pipeline_samples_per_s": pipeline_speed,
        "plain_samples_per_s": plain_speed,
        "speedup_vs_plain": median(speedups),
        "matmul_flops_per_s": matmul,
        "training_flops_per_sample": per_sample,
        "compute_bound_samples_per_s": bound,
        "pipeline_share_of_bound": pipeline_speed / bound,
        "plain_share_of_bound": plain_speed / bound,
        "val_error_pipeline": [r["val_error"] for r in runs["pipeline"]],
        "val_error_plain": [r["val_error"] for r in runs["plain"]],
    }


# -- 2-4. the sweep under DVC --------------------------------------------------------------


class Project:
    """A throwaway git + DVC copy of the project with its own MLflow store and a stage shim."""

    def __init__(self, root: Path, params: dict):
        self.root = root
        self.stage_log = root.parent / "stages.jsonl"
        shim_dir = root.parent / "shim"
        shim_dir.mkdir()
        shim = shim_dir / "python"
        shim.write_text(_SHIM.format(python=sys.executable, log=str(self.stage_log)))
        shim.chmod(0o755)
        venv_bin = Path(sys.executable).parent
        self.env = _env(
            PATH=os.pathsep.join([str(shim_dir), str(venv_bin), os.environ.get("PATH", "")]),
            GIT_AUTHOR_NAME="bench",
            GIT_AUTHOR_EMAIL="bench@example.com",
            GIT_COMMITTER_NAME="bench",
            GIT_COMMITTER_EMAIL="bench@example.com",
        )
        self.dvc_bin = str(venv_bin / "dvc")
        root.mkdir()
        shutil.copytree(
            ROOT / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
        )
        for name in ("dvc.yaml", ".gitignore", "pyproject.toml"):
            shutil.copy(ROOT / name, root / name)
        shutil.copytree(ROOT / "builders", root / "builders")  # a dependency of train
        (root / "data").mkdir()
        self.write_params(params)
        self.run("git", "init", "-q")
        self.dvc("init", "-q")
        self.dvc("config", "core.analytics", "false")
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", "bench project")

    def write_params(self, params: dict) -> None:
        with (self.root / "params.yaml").open("w") as handle:
            _yaml().dump(params, handle)

    def run(self, *argv: str) -> float:
        """Run a command in the project; returns its wall time."""
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=self.root, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
        return time.perf_counter() - started

    def dvc(self, *args: str) -> float:
        return self.run(self.dvc_bin, *args)

    def take_stage_records(self) -> list[dict]:
        """The stage processes run since the last call: name, seconds, peak RSS."""
        if not self.stage_log.exists():
            return []
        records = [json.loads(line) for line in self.stage_log.read_text().splitlines()]
        self.stage_log.unlink()
        for record in records:
            record["stage"] = stage_name(record.pop("argv"))
        return records

    def fit_seconds(self) -> dict[str, float]:
        """Each entry's pure training time, as the train stage logged it to MLflow."""
        with contextlib.closing(sqlite3.connect(self.root / "mlflow.db")) as db:
            rows = db.execute(
                "SELECT r.name, m.value FROM metrics m JOIN runs r ON m.run_uuid = r.run_uuid "
                "WHERE m.key = 'fit_seconds' ORDER BY m.timestamp"
            ).fetchall()
        return dict(rows)


def stage_name(argv: Sequence[str]) -> str:
    """`-m pipeline.train --entry l2_0 ...` -> `train@l2_0`."""
    module = argv[argv.index("-m") + 1].removeprefix("pipeline.") if "-m" in argv else argv[0]
    if "--entry" in argv:
        return f"{module}@{argv[argv.index('--entry') + 1]}"
    return module


def bench_sweep(work: Path, params: dict, imports: dict, noop_repeats: int) -> dict:
    project = Project(work / "lab", params)
    entries = list(params["sweep"])

    cold_s = project.dvc("repro", "-f")
    stages = project.take_stage_records()
    fits = project.fit_seconds()
    pure_training = sum(fits.values())
    walls = {s["stage"]: s["seconds"] for s in stages}
    train_walls = sum(walls[f"train@{e}"] for e in entries)
    eval_walls = sum(walls[f"evaluate@{e}"] for e in entries)
    per_process_imports = imports["tensorflow_s"] + imports["mlflow_s"]
    n = len(entries)
    overhead = {
        # TensorFlow + MLflow imports, paid by every train and evaluate process.
        "imports": 2 * n * per_process_imports,
        # DVC itself: start-up, hashing, lock file, cache: wall time outside any stage.
        "dvc": cold_s - sum(walls.values()),
        # Evaluation after its imports: loading the model, metrics, logging them.
        "evaluation": eval_walls - n * per_process_imports,
        # The train stage after imports and fit: tracing, data, saving, MLflow logging.
        "train_stage_rest": train_walls - n * per_process_imports - pure_training,
        "prepare_and_report": walls["prepare"] + walls["report"],
    }
    overhead_total = cold_s - pure_training

    dvc_startup = [project.dvc("version") for _ in range(noop_repeats)]
    noop = [project.dvc("repro") for _ in range(noop_repeats)]
    project.take_stage_records()

    changed = entries[0]
    edited = json.loads(json.dumps(params))
    rates = edited["sweep"][changed]["l2"]
    edited["sweep"][changed]["l2"] = (
        [r * 2 + 1e-3 for r in rates] if isinstance(rates, list) else rates * 2 + 1e-3
    )
    project.write_params(edited)
    one_entry_s = project.dvc("repro")
    rerun = sorted(s["stage"] for s in project.take_stage_records())
    one_entry_cold = walls[f"train@{changed}"] + walls[f"evaluate@{changed}"]
    return {
        "entries": n,
        "cold_repro_s": cold_s,
        "pure_training_s": pure_training,
        "fit_seconds": fits,
        "overhead_s": overhead_total,
        "overhead_share": overhead_total / pure_training,
        "overhead_parts_s": overhead,
        "stages": stages,
        "dvc_startup_s": median(dvc_startup),
        "noop_repro_s": median(noop),
        "noop_repro_runs_s": noop,
        "one_entry_changed": changed,
        "one_entry_repro_s": one_entry_s,
        "one_entry_stages_rerun": rerun,
        "one_entry_cold_stages_s": one_entry_cold,
        "peak_rss_mib": _peak_by_kind(stages),
    }


def _peak_by_kind(stages: list[dict]) -> dict[str, float]:
    """The largest peak RSS per stage kind (prepare, train, evaluate, report)."""
    peaks: dict[str, float] = {}
    for s in stages:
        kind = s["stage"].split("@")[0]
        peaks[kind] = max(peaks.get(kind, 0.0), s["peak_rss_mib"])
    return peaks


# -- 5. MLflow -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """`mlflow server` on 127.0.0.1 with its own store, proxying artifacts; stopped on exit."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> MlflowServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
            "--artifacts-destination", str(self.folder / "artifacts"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "server.log").open("w"),
            start_new_session=True,  # its own process group, so its workers stop with it
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited: {(self.folder / 'server.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError("mlflow server did not answer /health within 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def bench_mlflow(work: Path, params: Path, prepared: Path, entry: str, repeats: int) -> dict:
    """The train stage's body with no MLflow, with the local store and with an HTTP server."""
    runs: dict[str, list[dict]] = {"none": [], "sqlite": [], "http": []}
    experiment = _yaml().load(params.read_text())["base"]["experiment"]
    with MlflowServer(work / "mlflow-server") as server:
        envs = {"none": {}, "sqlite": {}, "http": {"MLFLOW_TRACKING_URI": server.uri}}
        roots = {store: work / f"mlflow-{store}" for store in runs}
        for store, root in roots.items():
            root.mkdir()
            if store != "none":
                # As in a sweep after its first entry: the store and experiment exist already.
                _warm_store(root, envs[store], experiment)
        for i in range(repeats):
            for store in runs:
                options = dict(params=params, prepared=prepared, entry=entry, store=store)
                out = roots[store] / f"model-{i}"
                r = _run_stage_task(roots[store], envs[store], out=out, **options)
                runs[store].append(r)
                log.info("mlflow %-6s run %.1fs, in MLflow calls %.2fs (%d calls), import %.1fs",
                         store, r["run_s"], r["tracking_s"], r["tracking_calls"],
                         r["mlflow_import_s"])  # fmt: skip
    result: dict = {"entry": entry, "runs": runs}
    none_run = median([r["run_s"] for r in runs["none"]])
    for store in ("sqlite", "http"):
        share = median([r["tracking_s"] / r["run_s"] for r in runs[store]])
        with_import = median(
            [(r["tracking_s"] + r["mlflow_import_s"]) / r["run_s"] for r in runs[store]]
        )
        by_call = {
            name: median([r["tracking_s_by_call"].get(name, 0.0) for r in runs[store]])
            for name in runs[store][0]["tracking_s_by_call"]
        }
        result[store] = {
            "tracking_s": median([r["tracking_s"] for r in runs[store]]),
            "tracking_s_by_call": by_call,
            "run_s": median([r["run_s"] for r in runs[store]]),
            "share_of_run": share,
            "share_of_run_with_import": with_import,
            "run_vs_no_mlflow": median([r["run_s"] + r["mlflow_import_s"] for r in runs[store]])
            / none_run,
        }
    result["none_run_s"] = none_run
    return result


def _warm_store(folder: Path, env: dict, experiment: str) -> None:
    code = f"from pipeline import tracking; tracking.use_experiment({experiment!r})"
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(DVC_ROOT=str(folder), **env),
        check=True,
        capture_output=True,
    )


def _run_stage_task(folder: Path, env: dict, **options: object) -> dict:
    """The stage task runs with the project's layout: DVC_ROOT points MLflow's store at `folder`."""
    result = folder / f"result-{time.monotonic_ns()}.json"
    argv = [sys.executable, "-m", "benchmarks.tasks", "stage", "--result", str(result)]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, env=_env(DVC_ROOT=str(folder), **env)
    )
    if done.returncode != 0:
        raise RuntimeError(f"stage task failed:\n{done.stderr[-3000:]}")
    return json.loads(result.read_text())


# -- report --------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def machine() -> dict:
    """What the figures were measured on (no paths, no host names)."""
    cpuinfo = _read(Path("/proc/cpuinfo")).splitlines()
    meminfo = _read(Path("/proc/meminfo")).splitlines()
    model = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "")
    mem_kib = next((int(x.split()[1]) for x in meminfo if x.startswith("MemTotal")), 0)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def table(results: dict) -> str:
    """The Markdown table of all figures, each a ratio with its baseline named."""
    rows = ["| measure | value | baseline (same run) | ratio | target |", "|---|---|---|---|---|"]
    t = results.get("training")
    if t:
        pipe_err = ", ".join(f"{e:.3f}" for e in t["val_error_pipeline"])
        plain_err = ", ".join(f"{e:.3f}" for e in t["val_error_plain"])
        speed = t["speedup_vs_plain"]
        rows += [
            f"| training throughput, entry `{t['entry']}`, {t['epochs']} epochs | "
            f"{t['pipeline_samples_per_s']:,.0f} samples/s | plain `model.fit` on numpy, "
            f"batch 32: {t['plain_samples_per_s']:,.0f} samples/s | **{speed:.2f}x** | "
            f"≥ 3x ({_mark(speed >= TARGETS['training_speedup_vs_plain'])}) |",
            f"| final val error (seeds 42…) | {pipe_err} | plain: {plain_err} | — | "
            f"same within seed noise |",
            f"| training throughput vs compute bound | {t['pipeline_samples_per_s']:,.0f} "
            f"samples/s | bound: {t['compute_bound_samples_per_s']:,.0f} samples/s "
            f"({t['training_flops_per_sample'] / 1e6:.2f} MFLOP/sample at "
            f"{t['matmul_flops_per_s']['1024x1024x1024'] / 1e9:.0f} GFLOP/s) | "
            f"{t['pipeline_share_of_bound']:.1%} of bound (plain: "
            f"{t['plain_share_of_bound']:.1%}) | — |",
        ]
    s = results.get("sweep")
    if s:
        parts = s["overhead_parts_s"]
        rows += [
            f"| cold `dvc repro -f`, {s['entries']} entries | {s['cold_repro_s']:.1f} s | "
            f"Σ pure training: {s['pure_training_s']:.1f} s | overhead "
            f"**{s['overhead_share']:.0%}** of training | ≤ 25% "
            f"({_mark(s['overhead_share'] <= TARGETS['sweep_overhead_share'])}) |",
        ]
        for name, seconds in parts.items():
            rows.append(
                f"| — overhead: {name.replace('_', ' ')} | {seconds:.1f} s | Σ pure training | "
                f"{seconds / s['pure_training_s']:.0%} | |"
            )
        rows += [
            f"| no-op `dvc repro` | {s['noop_repro_s']:.2f} s | `dvc version`: "
            f"{s['dvc_startup_s']:.2f} s | {s['noop_repro_s'] / s['dvc_startup_s']:.1f}x | "
            f"< 3 s ({_mark(s['noop_repro_s'] < TARGETS['noop_repro_s'])}) |",
            f"| `dvc repro`, `{s['one_entry_changed']}` changed | {s['one_entry_repro_s']:.1f} s "
            f"| its train + evaluate in the cold run: {s['one_entry_cold_stages_s']:.1f} s | "
            f"{s['one_entry_repro_s'] / s['one_entry_cold_stages_s']:.2f}x | "
            f"≈ 1 entry + start-up |",
        ]
        base_rss = results.get("imports", {}).get("tensorflow_peak_rss_mib")
        for kind, mib in s["peak_rss_mib"].items():
            ratio = f"{mib / base_rss:.2f}x" if base_rss else "—"
            rows.append(
                f"| peak memory, `{kind}` | {mib:,.0f} MiB | a process that only imports "
                f"TensorFlow: {base_rss or 0:,.0f} MiB | {ratio} | |"
            )
    m = results.get("mlflow")
    if m:
        for store, label in (("sqlite", "local store (sqlite)"), ("http", "`mlflow server`, HTTP")):
            r = m[store]
            rows.append(
                f"| MLflow calls in a `train` run, {label} | {r['tracking_s']:.2f} s | the run: "
                f"{r['run_s']:.1f} s | **{r['share_of_run']:.1%}** (with `import mlflow`: "
                f"{r['share_of_run_with_import']:.0%}) | < 5% "
                f"({_mark(r['share_of_run'] < TARGETS['mlflow_share_of_run'])}) |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 epochs, two entries, 1 repeat")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    parser.add_argument("--repeats", type=int, help="default: 3, or 1 with --quick")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    repeats = args.repeats or (1 if args.quick else 3)
    params = shrink_params(_yaml().load(args.params.read_text()), args.quick)
    entry = next(iter(params["sweep"]))
    if "l2_1e_2" in params["sweep"] and not args.quick:
        entry = "l2_1e_2"  # the sweep's best entry

    results: dict = {"machine": machine(), "quick": args.quick, "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="l2lab-bench-") as tmp:
        work = Path(tmp)
        params_file = work / "params.yaml"
        with params_file.open("w") as handle:
            _yaml().dump(params, handle)
        from pipeline.prepare import prepare

        prepare(params_file, work / "prepared")
        results["imports"] = run_task("imports", work)
        if "training" in parts:
            results["training"] = bench_training(
                work, params_file, work / "prepared", entry, repeats
            )
        if "mlflow" in parts:
            results["mlflow"] = bench_mlflow(work, params_file, work / "prepared", entry, repeats)
        if "sweep" in parts:
            results["sweep"] = bench_sweep(
                work, params, results["imports"], noop_repeats=max(3, repeats)
            )
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["table"] = table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(results["table"])


if __name__ == "__main__":
    main()

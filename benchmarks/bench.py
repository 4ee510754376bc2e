"""Benchmark the one-process sweep against baselines measured in the same run; print a table.

    python -m benchmarks.bench                            # the default sweep (~15 min on 2 cores)
    python -m benchmarks.bench --epochs 5 --entries 2     # a quick look

Every figure is a ratio against a baseline measured in the same run, on the same params, so
a busy machine slows both sides alike:

(a) sweep: a cold `dvc repro -f` with a fresh MLflow store in a throwaway copy of the project,
    against the same for the per-entry layout (`train@<entry>`/`evaluate@<entry>`, commit
    b45d537, checked out into a temporary `git worktree` and run with this venv), and against
    the sum of the entries' pure training times, each fit alone in one warm process;
(b) fused: `towers.fit_towers` of all entries against `training.fit` of each in turn, in one
    process (and both again with `jit_compile=True`);
(c) mlflow: the share of the `train` stage spent in `pipeline.tracking` calls, with the local
    store and with `mlflow server` on 127.0.0.1 (started here, stopped after);
(d) memory: the peak RSS of the `train` process with the sweep and with the sweep trained
    over `--extra-seeds` more seeds.
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
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from ruamel.yaml import YAML

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("sweep", "fused", "mlflow", "memory")
OLD_LAYOUT = "b45d537"  # the last commit with one train/evaluate stage pair per entry
EXTRA_SEED_BASE = 43

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


def write_params(path: Path, params: dict) -> None:
    with path.open("w") as handle:
        _yaml().dump(params, handle)


def shrink_params(params: dict, epochs: int | None = None, entries: int | None = None) -> dict:
    """A copy of `params` with fewer epochs and/or only the first `entries` sweep entries."""
    params = json.loads(json.dumps(params))
    if epochs is not None:
        params["train"]["epochs"] = epochs
    if entries is not None:
        params["sweep"] = dict(list(params["sweep"].items())[:entries])
    return params


def with_extra_seeds(params: dict, n: int) -> dict:
    """A copy of `params` that trains every entry again with `n` more seeds."""
    params = json.loads(json.dumps(params))
    params["base"]["repeat_seeds"] = [EXTRA_SEED_BASE + i for i in range(n)]
    return params


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("DVC_ROOT", None)
    env.update(extra)
    return env


def run_task(task: str, env: dict | None = None, **options: object) -> dict:
    """Run `benchmarks.tasks <task>` in a fresh process; returns its JSON and wall time."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = Path(handle.name)
    argv = [sys.executable, "-m", "benchmarks.tasks", task, "--result", str(result)]
    for key, value in options.items():
        if value is True:
            argv.append(f"--{key}")
        elif value not in (None, False):
            argv += [f"--{key}", str(value)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env or _env())
    try:
        if done.returncode != 0:
            raise RuntimeError(f"task {task} failed:\n{done.stderr[-3000:]}")
        payload = json.loads(result.read_text())
    finally:
        result.unlink(missing_ok=True)
    payload["process_s"] = time.perf_counter() - started
    return payload


# -- (a) the sweep under DVC, new layout and old -------------------------------------------


def stage_name(argv: Sequence[str]) -> str:
    """`-m pipeline.train --entry l2_0 ...` -> `train@l2_0`; `-m pipeline.train ...` -> `train`."""
    module = argv[argv.index("-m") + 1].removeprefix("pipeline.") if "-m" in argv else argv[0]
    if "--entry" in argv:
        return f"{module}@{argv[argv.index('--entry') + 1]}"
    return module


class Project:
    """A throwaway git + DVC copy of the code at `source` (this checkout or an old worktree),
    with its own MLflow store and a stage shim."""

    def __init__(self, root: Path, source: Path, params: dict):
        self.root = root
        self.stage_log = root.parent / f"{root.name}-stages.jsonl"
        shim_dir = root.parent / f"{root.name}-shim"
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
            source / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
        )
        for name in ("dvc.yaml", ".gitignore", "pyproject.toml"):
            shutil.copy(source / name, root / name)
        shutil.copytree(source / "data" / "raw", root / "data" / "raw")  # prepare's dep
        if (source / "builders").is_dir():  # a dependency of train (not in older layouts)
            shutil.copytree(source / "builders", root / "builders")
        write_params(root / "params.yaml", params)
        self.run("git", "init", "-q")
        self.dvc("init", "-q")
        self.dvc("config", "core.analytics", "false")
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", "bench project")

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


@contextlib.contextmanager
def old_worktree(revision: str, folder: Path) -> Iterator[Path]:
    """`revision` of this repository checked out at `folder`; removed again on exit."""
    git = ["git", "-C", str(ROOT)]
    subprocess.run(
        [*git, "worktree", "add", "--detach", "-q", str(folder), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], capture_output=True)
        subprocess.run([*git, "worktree", "prune"], capture_output=True)


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
    `grid:`), which its validation refuses; the sweep's entries are kept whole."""
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


# -- (c) MLflow's share of `train`, (d) its peak memory -------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with its own store, serving artifacts; yields its URI."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    with (folder / "server.log").open("w") as server_log:
        process = subprocess.Popen(
            argv, cwd=folder, stdout=server_log, stderr=subprocess.STDOUT, env=_env(),
            start_new_session=True,  # its own process group, so its workers stop with it
        )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mlflow server did not start:\n{(folder / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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
    result["sqlite"] = train_stage(work / "stage-sqlite", params, prepared, _env())
    with mlflow_server(work / "mlflow-server") as uri:
        log.info("(c) train stage, mlflow server at %s ...", uri)
        result["http"] = train_stage(
            work / "stage-http", params, prepared, _env(MLFLOW_TRACKING_URI=uri)
        )
    for run in result.values():
        run["share_of_run"] = run["tracking_s"] / run["run_s"]
        run["share_with_import"] = (run["tracking_s"] + run["mlflow_import_s"]) / (
            run["run_s"] + run["mlflow_import_s"]
        )
    return result


def bench_memory(work: Path, params: dict, prepared: Path, extra_seeds: int, mlflow: dict) -> dict:
    sweep = mlflow.get("sqlite") or train_stage(work / "memory-sweep", params, prepared, _env())
    log.info("(d) train stage with %d extra seeds ...", extra_seeds)
    seeds = train_stage(
        work / "memory-seeds", with_extra_seeds(params, extra_seeds), prepared, _env()
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


# -- report --------------------------------------------------------------------------------


def machine() -> dict:
    """What the figures were measured on (no paths, no host names)."""

    def read(path: str) -> list[str]:
        try:
            return Path(path).read_text().splitlines()
        except OSError:
            return []

    cpuinfo = read("/proc/cpuinfo")
    model = next((x.split(":", 1)[1].strip() for x in cpuinfo if "model name" in x), "")
    mem_kib = next((int(x.split()[1]) for x in read("/proc/meminfo") if "MemTotal" in x), 0)
    import keras
    import mlflow

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "mlflow": mlflow.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def table(results: dict) -> str:
    """The Markdown table: each figure with its same-run baseline and the ratio."""
    rows = ["| measure | value | baseline (same run) | ratio |", "|---|---|---|---|"]
    s = results.get("sweep")
    if s:
        new, old = s["new"], s["old"]
        n = f"{s['entries']} entries x {s['epochs']} epochs"
        rows += [
            f"| (a) cold `dvc repro -f`, {n}, one `train` + one `evaluate` process | "
            f"{new['cold_repro_s']:.1f} s | per-entry layout ({s['old_revision']}, "
            f"{old['stage_processes']} stage processes): {old['cold_repro_s']:.1f} s | "
            f"**{s['new_vs_old']:.2f}x** the time ({1 / s['new_vs_old']:.1f}x faster) |",
            f"| (a) cold `dvc repro -f`, one-process layout | {new['cold_repro_s']:.1f} s | "
            f"Σ pure training, each entry fit alone in one warm process: "
            f"{s['pure_training_s']:.1f} s | **{s['new_vs_pure_training']:.2f}x** |",
            f"| (a) cold `dvc repro -f`, per-entry layout | {old['cold_repro_s']:.1f} s | "
            f"Σ pure training: {s['pure_training_s']:.1f} s | {s['old_vs_pure_training']:.2f}x |",
        ]
        for kind in ("prepare", "train", "evaluate", "report"):
            a, b = new["by_stage"].get(kind), old["by_stage"].get(kind)
            if a and b:
                rows.append(
                    f"| — stage `{kind}`: wall (peak RSS) | {a['seconds']:.1f} s "
                    f"({a['peak_mib']:,.0f} MiB) | per-entry layout, {b['processes']} "
                    f"process(es): {b['seconds']:.1f} s ({b['peak_mib']:,.0f} MiB max) | "
                    f"{a['seconds'] / b['seconds']:.2f}x |"
                )
        rows.append(
            f"| — DVC outside the stages | {new['outside_stages_s']:.1f} s | per-entry layout: "
            f"{old['outside_stages_s']:.1f} s | "
            f"{new['outside_stages_s'] / max(old['outside_stages_s'], 1e-9):.2f}x |"
        )
    f = results.get("fused")
    if f:
        for key, label in (("default", ""), ("xla", ", `jit_compile=True`")):
            r = f.get(key)
            if r is None:
                continue
            if "error" in r:
                rows.append(f"| (b) fused `fit_towers`{label} | failed: {r['error']} | | |")
                continue
            rows.append(
                f"| (b) fused `fit_towers`, {len(f['towers'])} models x {f['epochs']} epochs"
                f"{label} | {r['fused_s']:.1f} s | `training.fit` of each in turn, same process"
                f"{label}: {r['alone_total_s']:.1f} s | **{r['alone_total_s'] / r['fused_s']:.1f}x"
                f" faster** (max \\|Δw\\| {r['max_weight_difference']:.1g}) |"
            )
        if "fused_s" in f.get("xla", {}):
            d, x = f["default"], f["xla"]
            rows.append(
                f"| (b) `jit_compile=True` vs default (not used by the pipeline) | fused "
                f"{x['fused_s']:.1f} s, alone {x['alone_total_s']:.1f} s | fused "
                f"{d['fused_s']:.1f} s, alone {d['alone_total_s']:.1f} s | fused "
                f"{x['fused_s'] / d['fused_s']:.2f}x, alone "
                f"{x['alone_total_s'] / d['alone_total_s']:.2f}x the time |"
            )
    m = results.get("mlflow")
    if m:
        for store, label in (("sqlite", "local store (sqlite)"), ("http", "`mlflow server`, HTTP")):
            r = m[store]
            rows.append(
                f"| (c) `pipeline.tracking` calls in `train`, {label}, {r['tracking_calls']} "
                f"calls | {r['tracking_s']:.1f} s | the `train` body: {r['run_s']:.1f} s (fit "
                f"{r['fit_s']:.1f} s) | **{r['share_of_run']:.1%}** (with `import mlflow` "
                f"{r['mlflow_import_s']:.1f} s: {r['share_with_import']:.0%}) |"
            )
        setup = {store: m[store]["store_setup_s"] for store in ("sqlite", "http")}
        rows.append(
            "| — once per project, before its first sweep: creating the store and experiment "
            f"| sqlite {setup['sqlite']:.1f} s, HTTP {setup['http']:.1f} s "
            "| not in the shares above | |"
        )
        worst = max(m.values(), key=lambda r: r["tracking_s"])
        top = sorted(worst["tracking_s_by_call"].items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            "| — largest calls ("
            + ("HTTP" if worst is m["http"] else "sqlite")
            + ") | "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in top)
            + " | | |"
        )
    mem = results.get("memory")
    if mem:
        a, b = mem["sweep"], mem["seeds"]
        floor = mem["tensorflow_only_peak_rss_mib"]
        rows += [
            f"| (d) peak RSS of `train`, {a['models']} models | {a['peak_rss_mib']:,.0f} MiB | "
            f"a process that only imports TensorFlow: {floor:,.0f} MiB | "
            f"{a['peak_rss_mib'] / floor:.2f}x |",
            f"| (d) peak RSS of `train`, {b['models']} models (extra seeds) | "
            f"{b['peak_rss_mib']:,.0f} MiB | {a['models']} models: {a['peak_rss_mib']:,.0f} MiB | "
            f"{b['peak_rss_mib'] / a['peak_rss_mib']:.2f}x (+"
            f"{(b['peak_rss_mib'] - a['peak_rss_mib']) / (b['models'] - a['models']):.1f} "
            f"MiB per model) |",
        ]
    return "\n".join(rows)


def conditions(results: dict) -> str:
    m = results["machine"]
    start, end = m["load_average_at_start"][0], m.get("load_average_at_end", [float("nan")])[0]
    return (
        f"Measured on {m['cpus']} vCPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python "
        f"{m['python']}, Keras {m['keras']}, MLflow {m['mlflow']}. Shared machine: other "
        f"engineers' jobs ran on the same cores (1-min load average {start:.1f} at the start, "
        f"{end:.1f} at the end), so absolute seconds drift; compare the ratios."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--entries", type=int, help="keep only the first N sweep entries")
    parser.add_argument("--extra-seeds", type=int, default=3, help="(d): seeds added per entry")
    parser.add_argument("--old-revision", default=OLD_LAYOUT, help="(a): the per-entry layout")
    parser.add_argument("--no-jit", action="store_true", help="(b): skip jit_compile=True")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    params = shrink_params(_yaml().load(args.params.read_text()), args.epochs, args.entries)

    results: dict = {"machine": machine(), "params": params}
    with tempfile.TemporaryDirectory(prefix="l2lab-bench-") as tmp:
        work = Path(tmp)
        write_params(work / "params.yaml", params)
        from pipeline.prepare import prepare

        prepare(work / "params.yaml", work / "prepared")
        if "sweep" in parts:  # first: the slowest part, and the one most likely to fail
            results["sweep"] = bench_sweep(work, params, args.old_revision)
        if "sweep" in parts or "fused" in parts:
            log.info("(b) fits in one warm process ...")
            results["fused"] = run_task(
                "fits", params=work / "params.yaml", prepared=work / "prepared", jit=not args.no_jit
            )
        if "sweep" in parts:
            add_training_ratios(results["sweep"], results["fused"])
        if "mlflow" in parts:
            results["mlflow"] = bench_mlflow(work, params, work / "prepared")
        if "memory" in parts:
            results["memory"] = bench_memory(
                work, params, work / "prepared", args.extra_seeds, results.get("mlflow", {})
            )
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["table"] = table(results)
    results["conditions"] = conditions(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(results["conditions"])
    print()
    print(results["table"])


if __name__ == "__main__":
    main()

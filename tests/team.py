"""Real team components for the tests: PostgreSQL on loopback, an MLflow tracking server
with served artifacts, and a `dvc queue` run to completion."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Project

from benchmarks import servers
from benchmarks.servers import free_port


def _postgres_bin() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(found[0]).parent if found else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields the URI of an empty database.

    initdb and pg_ctl refuse to run as root, so as root they run as user `postgres`.
    """
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    as_user: list[str] = []
    if os.geteuid() == 0:
        # util-linux puts it in sbin, which a non-login shell's PATH may lack.
        search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
        runuser = shutil.which("runuser", path=search)
        if runuser is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        as_user = [runuser, "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="l2lab-pg-"))  # not under pytest's root-only tmp
    if as_user:
        shutil.chown(base, "postgres")
    port = free_port()

    def run(*args: str | Path) -> None:
        subprocess.run([*as_user, *map(str, args)], check=True, capture_output=True, timeout=120)

    try:
        run(bin_dir / "initdb", "-D", base / "data", "-A", "trust", "-U", "postgres", "--no-sync")
        run(
            bin_dir / "pg_ctl", "-D", base / "data", "-l", base / "server.log", "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {port} -k {base} -F", "start",
        )  # fmt: skip
        try:
            run(
                bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow"
            )
            yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
        finally:
            run(bin_dir / "pg_ctl", "-D", base / "data", "-m", "fast", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def mlflow_server(backend_uri: str, artifacts: Path, log_path: Path, workers: int = 2):
    """`mlflow server` on 127.0.0.1 with served artifacts, blind to this shell's MLflow
    settings; a context manager yielding its URI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return servers.mlflow_server(backend_uri, artifacts, log_path, workers=workers, env=env)


def run_queued_experiments(project: Project, settings: list[str], jobs: int = 2) -> str:
    """Queue one `dvc exp run` per `-S` setting, run them `jobs` at a time, wait for all.

    Returns `dvc queue status`; fails with the queue's logs if any experiment failed.
    """
    for number, setting in enumerate(settings):
        project.dvc("exp", "run", "--queue", "--name", f"exp{number}", "-S", setting)
    project.dvc("queue", "start", "-j", str(jobs))
    deadline = time.monotonic() + 600
    while True:
        status = project.dvc("queue", "status").stdout
        finished = sum(status.count(word) for word in ("Success", "Failed"))
        if finished >= len(settings):
            break
        assert time.monotonic() < deadline, status
        time.sleep(3)
    if "Failed" in status:
        logs = [
            project.dvc("queue", "logs", f"exp{n}", check=False).stdout[-3000:]
            for n in range(len(settings))
        ]
        raise AssertionError(f"{status}\n" + "\n".join(logs))
    return status

"""Local servers for the tests and the benchmark, on loopback only: an `mlflow server` with
served artifacts and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(
    backend_uri: str,
    artifacts: Path,
    log_path: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with served artifacts; yields its URI once it answers,
    and stops it (its whole process group) on the way out. Without `env`, it runs blind to
    this shell's MLflow settings."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    port = free_port()
    argv = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    with serving(argv, f"http://127.0.0.1:{port}", "/health", log_path, env=env) as uri:
        yield uri


@contextlib.contextmanager
def serving(
    argv: list[str],
    url: str,
    probe: str,
    log_path: Path,
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 180,
) -> Iterator[str]:
    """`argv` in its own process group (a server and its workers stop together), its output
    in `log_path`; yields `url` once `url + probe` answers, and stops the group on the way
    out (SIGTERM, then SIGKILL after 30 s)."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=dict(env),
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}{probe}", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{argv[0]} did not start:\n{log_path.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have stopped on its own
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _postgres_bin() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(found[0]).parent if found else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields the URI of an empty database.

    initdb and pg_ctl refuse to run as root, so as root they run as user `postgres`. Where
    it cannot start, the test asking for it is skipped.
    """
    import pytest  # here, not at the top: the benchmark imports this module too

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

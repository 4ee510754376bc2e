"""Set up the project's environment if needed, then run the sweep or the tests.

    python3 -m pipeline.bootstrap repro [dvc repro args...]
    python3 -m pipeline.bootstrap test  [pytest args...]

Needs nothing but Python 3.11+: it creates `.venv/`, installs the locked dependencies
(`requirements.lock`) and the project into it, and reinstalls only when the lock or
`pyproject.toml` changed. Standard library only, since it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".installed-from"
PYTEST_NO_TESTS_COLLECTED = 5


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _install_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    """Create `.venv` and install the locked dependencies, unless that is already done."""
    if sys.version_info < (3, 11):  # noqa: UP036 (this file runs on whatever python3 is)
        sys.exit(f"error: Python 3.11+ is needed, this is {sys.version.split()[0]}")
    if not _venv_python().exists():
        print(f"bootstrap: creating {VENV.name}/", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    fingerprint = _install_fingerprint()
    if STAMP.is_file() and STAMP.read_text() == fingerprint:
        return
    print("bootstrap: installing locked dependencies (first run: a few minutes)", file=sys.stderr)
    pip = [str(_venv_python()), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "-r", str(LOCK)], check=True)
    subprocess.run([*pip, "install", "--no-deps", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(fingerprint)


def _run(args: list[str]) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    return subprocess.run(args, cwd=ROOT, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in {"repro", "test", "setup"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment()
    if command == "setup":
        return 0
    if command == "repro":
        return _run([str(VENV / "bin" / "dvc"), "repro", *rest])
    lint = _run([str(VENV / "bin" / "ruff"), "check", "pipeline", "tests"])
    if lint != 0:
        return lint
    code = _run([str(_venv_python()), "-m", "pytest", *rest])
    # pytest's "no tests collected" must not look like success.
    return 1 if code == PYTEST_NO_TESTS_COLLECTED else code


if __name__ == "__main__":
    sys.exit(main())

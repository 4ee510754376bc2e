"""Set up the project's environment if needed, then run the sweep or the tests.

    python3 -m pipeline.bootstrap repro [dvc repro args...]
    python3 -m pipeline.bootstrap test  [pytest args...]

Needs nothing but Python 3.11+: it creates `.venv/`, installs the locked dependencies
(`requirements.lock`) and the project into it, and reinstalls only when the lock or
`pyproject.toml` changed. Standard library only, since it runs before anything is installed.

It installs with `uv` (itself pinned in the lock and installed from PyPI by pip), which sets up
the environment several times faster than pip; if uv cannot be installed or fails, pip does it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".installed-from"
PYTEST_NO_TESTS_COLLECTED = 5
# `dvc plots show` fills this page (`plots.html_template` in .dvc/config, relative to .dvc/).
# Generated, not committed: it inlines about 0.9 MB of JavaScript from an installed package.
PLOTS_PAGE_SKELETON = ROOT / "pipeline" / "plot_templates" / "page.html"
PLOTS_PAGE = ROOT / ".dvc" / "tmp" / "plots_page.html"
BUNDLE_MARKER = "/*VEGA_BUNDLE*/"
# vl-convert's bundle of Vega, Vega-Lite and vega-embed (the same JavaScript it renders with),
# which sets window.vega, window.vegaLite and window.vegaEmbed, as DVC's plot divs expect.
_PRINT_BUNDLE = "import sys, vl_convert; sys.stdout.write(vl_convert.javascript_bundle())"
# Debian packages the tests start for real (a browser for the MLflow UI, a PostgreSQL-backed
# tracking server, a terminal), each with a file that shows it is installed.
TEST_SYSTEM_PACKAGES = {
    "chromium": "/usr/bin/chromium",
    "chromium-driver": "/usr/bin/chromedriver",
    "postgresql": "/usr/lib/postgresql",
    "tmux": "/usr/bin/tmux",  # a real 80-column terminal for `dvc exp show`
    "curl": "/usr/bin/curl",  # docs/using-the-model.md's request to a served model
}


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
        # With pip: it installs uv, it is the fallback, and users `pip install` extras.
        venv.create(VENV, with_pip=True)
    fingerprint = _install_fingerprint()
    if STAMP.is_file() and STAMP.read_text() == fingerprint:
        return
    print("bootstrap: installing locked dependencies", file=sys.stderr)
    if not _install_with_uv():
        print("bootstrap: installing with pip instead (a few minutes)", file=sys.stderr)
        _install_with_pip()
    STAMP.write_text(fingerprint)


def _pip() -> list[str]:
    return [str(_venv_python()), "-m", "pip", "--disable-pip-version-check", "-qq"]


def _locked_version(name: str) -> str | None:
    match = re.search(rf"^{re.escape(name)}==(\S+)$", LOCK.read_text(), re.MULTILINE)
    return match.group(1) if match else None


def _install_with_uv() -> bool:
    """Install the lock exactly (`uv pip sync`) and the project; False if uv is not usable.

    uv is in the lock, so `sync` keeps it, and the version that installs is the one pinned.
    """
    version = _locked_version("uv")
    uv = VENV / "bin" / "uv"
    python = ["--python", str(_venv_python())]
    # uv leaves bytecode to the first import, which writes only what is imported (compiling
    # everything, as pip does, takes about 100 s on 2 cores). Where PYTHONDONTWRITEBYTECODE
    # is set nothing is ever written, and every stage would recompile TensorFlow's sources
    # (its imports 2.5x slower, measured): compile at install there.
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        python.append("--compile-bytecode")
    steps = [
        [*_pip(), "install", f"uv=={version}" if version else "uv"],
        [str(uv), "pip", "sync", "-q", *python, str(LOCK)],
        [str(uv), "pip", "install", "-q", *python, "--no-deps", "-e", f"{ROOT}[test]"],
    ]
    for step in steps:
        if subprocess.run(step).returncode != 0:
            print(f"bootstrap: `{' '.join(step[:3])} ...` failed", file=sys.stderr)
            return False
    return True


def _install_with_pip() -> None:
    subprocess.run([*_pip(), "install", "-r", str(LOCK)], check=True)
    subprocess.run([*_pip(), "install", "--no-deps", "-e", f"{ROOT}[test]"], check=True)


def write_plots_page(page: Path, python: Path) -> None:
    """Write the self-contained HTML template for `dvc plots show` to `page`, with the Vega
    JavaScript from `python`'s vl-convert-python package: plots then render offline."""
    made = subprocess.run([str(python), "-c", _PRINT_BUNDLE], capture_output=True, text=True)
    if made.returncode != 0:
        last = (made.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(
            f"error: cannot bundle Vega for the plots page ({last}); reinstall with"
            f" `rm {VENV.name}/{STAMP.name} && python3 -m pipeline.bootstrap setup`"
        )
    bundle = made.stdout
    # Inlined in a <script> element, and DVC replaces its {placeholders} in the whole page.
    if "</script" in bundle or "{plot_divs}" in bundle or "{scripts}" in bundle:
        raise SystemExit("error: vl-convert's bundle cannot be inlined; pin another version")
    html = PLOTS_PAGE_SKELETON.read_text().replace(BUNDLE_MARKER, bundle)
    page.parent.mkdir(parents=True, exist_ok=True)
    partial = page.with_name(page.name + ".partial")
    partial.write_text(html)
    partial.replace(page)


def ensure_plots_page() -> None:
    """Regenerate the plots page when missing or older than the install or its skeleton."""
    sources = (STAMP, PLOTS_PAGE_SKELETON)
    if PLOTS_PAGE.is_file() and all(
        PLOTS_PAGE.stat().st_mtime >= path.stat().st_mtime for path in sources
    ):
        return
    print(
        f"bootstrap: writing {PLOTS_PAGE.relative_to(ROOT)} (plots that render offline)",
        file=sys.stderr,
    )
    write_plots_page(PLOTS_PAGE, _venv_python())


def ensure_test_system_packages() -> None:
    """Install the Debian packages some tests need, where this user may (root with apt-get)."""
    missing = [name for name, marker in TEST_SYSTEM_PACKAGES.items() if not Path(marker).exists()]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"bootstrap: {' '.join(missing)} not installed and this user cannot apt-get install;"
            " the tests that need them will be skipped",
            file=sys.stderr,
        )
        return
    print(f"bootstrap: installing Debian packages {' '.join(missing)}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
    )


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
    ensure_plots_page()
    if command == "setup":
        return 0
    if command == "repro":
        return _run([str(VENV / "bin" / "dvc"), "repro", *rest])
    ensure_test_system_packages()
    lint = _run([str(VENV / "bin" / "ruff"), "check", "pipeline", "tests", "benchmarks"])
    if lint != 0:
        return lint
    # The 25 slowest tests in every log: a test that grows is seen where it runs. Two
    # processes, each taking whole test modules (a module's server, cluster or browser starts
    # once): most of a slow test is one process starting up, so two keep both cores busy.
    # Modules in the order tests/conftest.py gives them (the longest first), not xdist's
    # (the most tests first). A later --durations or -n in `rest` overrides these (-n 0: one
    # process).
    pytest = [
        str(_venv_python()), "-m", "pytest", "--durations=25",
        "-n", "2", "--dist=loadfile", "--no-loadscope-reorder",
    ]  # fmt: skip
    code = _run([*pytest, *rest])
    # pytest's "no tests collected" must not look like success.
    return 1 if code == PYTEST_NO_TESTS_COLLECTED else code


if __name__ == "__main__":
    sys.exit(main())

"""Every private use of Keras and MLflow in pipeline/ is listed in core/private_apis.py, and
the libraries they tie the lab to are bounded to the minor versions the tests ran."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pipeline.core.private_apis import PRIVATE_USES

ROOT = Path(__file__).resolve().parent.parent
# What a private use looks like in our code: a private module of Keras or MLflow, a private
# optimizer method, a direct connection to MLflow's database, a base class's build skipped.
PATTERNS = (
    r"keras\.src(?:\.\w+)+",
    r"mlflow\.(?:utils|store|server|tracking\._\w+)(?:\.\w+)*",
    r"\b_backend_update_step\b",
    r"\b_apply_weight_decay\b",
    r"\b_var_key\b",
    r"\bsqlite3\.connect\b",
    r"super\(keras\.\w+\.\w+, self\)\.build",
)


def _private_uses_in_code() -> set[tuple[str, str]]:
    found = set()
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if path.name == "private_apis.py":
            continue
        text = path.read_text()
        for pattern in PATTERNS:
            for match in re.finditer(pattern, text):
                found.add((str(path.relative_to(ROOT)), match.group(0)))
    return found


def test_every_private_use_in_the_code_is_listed():
    listed = {(use.file, use.name) for use in PRIVATE_USES}
    unlisted = {
        (file, name)
        for file, name in _private_uses_in_code()
        if not any(file == f and name.startswith(n) for f, n in listed)
    }
    assert not unlisted, f"list these in pipeline/core/private_apis.py: {sorted(unlisted)}"


def test_every_listed_use_is_still_in_its_file():
    for use in PRIVATE_USES:
        assert use.name in (ROOT / use.file).read_text(), use


def test_keras_and_mlflow_are_bounded_to_the_locked_minor_version():
    locked = dict(
        line.split("==") for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )  # fmt: skip
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for library in sorted({use.library for use in PRIVATE_USES}):
        (spec,) = [d for d in dependencies if re.match(rf"{library}\b", d)]
        major, minor, _ = locked[library].split(".")
        assert spec == f"{library}>={locked[library]},<{major}.{int(minor) + 1}", spec

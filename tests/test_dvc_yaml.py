"""dvc.yaml stays true to the code: each stage depends on every pipeline module it imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.support.params import ROOT

DVC_YAML = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())


def _imported_modules(module: str, seen: set[str] | None = None) -> set[str]:
    """`module` and every `pipeline.*` module it imports, transitively (lazy imports too)."""
    seen = set() if seen is None else seen
    if module in seen:
        return seen
    seen.add(module)
    tree = ast.parse(_source(module).read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module == "pipeline":
            names = [f"pipeline.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline."):
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("pipeline.")]
        for name in names:
            if _source(name).is_file():
                _imported_modules(name, seen)
    return seen


def _source(module: str) -> Path:
    """The file of a module, or the `__init__.py` of a package."""
    path = ROOT / module.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _dep(module: str) -> str:
    """How dvc.yaml lists a module: a package's modules are covered by its folder."""
    parts = module.split(".")
    if len(parts) > 2 or (ROOT / module.replace(".", "/")).is_dir():
        return "/".join(parts[:2])
    return module.replace(".", "/") + ".py"


def _stages():
    for name, stage in DVC_YAML["stages"].items():
        body = stage.get("do", stage)
        yield name, body


@pytest.mark.parametrize(("name", "stage"), list(_stages()), ids=[n for n, _ in _stages()])
def test_stage_deps_list_every_imported_module(name: str, stage: dict):
    module = re.search(r"python -m (pipeline\.\w+)", stage["cmd"]).group(1)
    needed = {_dep(m) for m in _imported_modules(module)}
    listed = {d for d in stage["deps"] if isinstance(d, str) and d.startswith("pipeline/")}
    assert needed - listed == set(), f"{name}: add these to deps in dvc.yaml"
    assert listed - needed == set(), f"{name}: these deps are not imported by {module}"

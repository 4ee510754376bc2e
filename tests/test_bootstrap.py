"""The bootstrap runs on a bare python3 and installs the lock with a pinned uv.

Offline checks only: a real install downloads about 1 GB (cold setup times are in README.md).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from pipeline import bootstrap
from tests.support.params import ROOT


def test_bootstrap_imports_only_the_standard_library():
    tree = ast.parse((ROOT / "pipeline" / "bootstrap.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert imported - {"__future__"} <= sys.stdlib_module_names, imported


def test_the_lock_pins_uv_so_that_sync_keeps_the_installer():
    version = bootstrap._locked_version("uv")
    assert version is not None and version[0].isdigit(), version
    assert bootstrap._locked_version("vl-convert-python") is not None  # the plots page
    assert bootstrap._locked_version("no-such-package") is None


def test_a_plots_page_that_cannot_be_made_is_one_line(tmp_path: Path):
    with pytest.raises(SystemExit) as caught:
        bootstrap.write_plots_page(tmp_path / "page.html", Path("/bin/false"))
    message = str(caught.value)
    assert (
        message.startswith("error: cannot bundle Vega for the plots page") and "\n" not in message
    )
    assert not (tmp_path / "page.html").exists()

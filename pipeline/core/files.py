"""Writing a stage's output folder so that a failure never leaves a half-written one."""

from __future__ import annotations

import shutil
from pathlib import Path


def _leftovers(target: Path) -> list[Path]:
    return [target.with_name(target.name + suffix) for suffix in (".partial", ".old")]


def clean_stale(target: Path) -> None:
    """Remove what an interrupted earlier run left beside `target`: `<target>.partial` and
    `<target>.old`, folders or files.

    They would otherwise sit in folders that other stages depend on (`models/`, `metrics/`),
    changing those dependencies' hashes.
    """
    for leftover in _leftovers(target):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink(missing_ok=True)


def abandon_staging(target: Path) -> None:
    """After an interruption: put the earlier `target` back if `publish_dir` was cut short
    between its renames, and remove the unfinished output, so that the workspace holds what
    the last completed run left (DVC may restore the stage from its run cache, and then no
    stage would remove leftovers)."""
    retired = target.with_name(target.name + ".old")
    if retired.exists() and not target.exists():
        retired.rename(target)
    clean_stale(target)


def staging_dir(target: Path) -> Path:
    """An empty folder beside `target` to write into before `publish_dir`."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def publish_dir(staging: Path, target: Path) -> None:
    """Put the finished `staging` folder in `target`'s place, replacing any earlier one.

    Each step is a rename within one folder, so `target` is always either the old complete
    output or the new complete output.
    """
    retired = target.with_name(target.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)

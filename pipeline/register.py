"""Stage `register`: the chosen model (`chosen/`, stage `chosen`) into MLflow's Model Registry
as a version of `registry.name`, with the decision as its tags, and `registry.alias` on it.

Idempotent: the version is found again by the chosen model's key (chosen.json's `key`: its
model file, preparation and decision facts), so `dvc repro` with nothing changed registers
nothing, and a sweep that chooses the same model again reuses its version.

Who moves the alias: `dvc repro` (or `dvc exp run`) in the workspace, and nothing else. A
queued or `--temp` experiment runs in a temporary copy (DVC_ROOT names the workspace:
pipeline/core/project_root.py); it registers its version, tagged with its name
(DVC_EXP_NAME), and leaves the alias where it is, so experiments finishing in any order never
race for it. `refine`'s rounds run in the workspace one after another (DVC's repo lock), so
the last, which holds every rate tried, moves it. An earlier version keeps its number.

Writes no files; DVC runs it on every `dvc repro` (always_changed). An unreachable tracking
server: one line, exit 2, nothing registered (the registry as it was).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from pipeline.config import load_config
from pipeline.core import contracts
from pipeline.core.project_root import project_root
from pipeline.core.runner import run_stage

log = logging.getLogger(__name__)


def in_workspace() -> bool:
    """Whether this `dvc repro` runs in the user's workspace, not in a temporary copy."""
    return Path.cwd().resolve() == project_root()


def version_tags(facts: dict, cwd: Path) -> dict[str, str]:
    """The decision as tags (numbers as written in chosen.json; the rates as JSON), the
    git commit of what ran (`-dirty` when it differs from HEAD, as a `-S` edit of an
    experiment does), and the DVC experiment's name when there is one."""
    from pipeline.tracking import runs

    as_json = ("l2_rates", "l2_sp_rates", "frozen")  # the last two: fine-tuning's
    tags = {k: str(v) for k, v in facts.items() if k != "key" and k not in as_json}
    tags |= {k: json.dumps(facts[k]) for k in as_json if k in facts}
    ran = runs.run_tags(cwd)
    return tags | {k: ran[k] for k in ("git_commit", "dvc_exp_name") if k in ran}


def describe(facts: dict) -> str:
    return (
        f"{facts['entry']}, chosen by {facts['rule']} on {facts['figure']} "
        f"{facts['figure_value']} (SE {facts['figure_se']}); {facts['test_figure']} "
        f"{facts['test_value']}, 95% interval [{facts['test_ci_low']}, {facts['test_ci_high']}] "
        f"({facts['test_interval']}); trained on the {facts['trained_on']} "
        f"({facts['train_rows']} rows)"
    )


def register(params: Path, chosen_dir: Path, models_dir: Path) -> None:
    config = load_config(params)
    facts = contracts.read_stage_json(chosen_dir / contracts.CHOSEN_FILE, "chosen")
    if facts.get("entry") is None:
        log.info("%s: nothing to register", facts.get("reason", "no chosen model"))
        return
    from pipeline.tracking import registry

    workspace = in_workspace()
    done = registry.register_folder(
        chosen_dir, config.registry.name, facts["key"], version_tags(facts, Path.cwd()),
        config.base.experiment, contracts.models_digest(models_dir),
        description=describe(facts), alias=config.registry.alias, move_alias=workspace,
    )  # fmt: skip
    name, version, alias = done.name, done.version, done.alias
    if done.new:
        log.info("registered %s version %d: %s", name, version, describe(facts))
    else:
        log.info("%s version %d holds this chosen model already: nothing registered", name, version)
    if workspace:
        log.info("alias %r -> version %d: load it as models:/%s@%s", alias, version, name, alias)
    else:
        log.info(
            "experiment %s runs in a temporary copy: alias %r left at version %s (only `dvc "
            "repro` in the workspace moves it)",
            os.environ.get("DVC_EXP_NAME") or "?", alias, done.alias_version or "none",
        )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--chosen", type=Path, default=Path("chosen"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    args = parser.parse_args(argv)
    run_stage("register", lambda: register(args.params, args.chosen, args.models))


if __name__ == "__main__":
    main()

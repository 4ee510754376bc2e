"""Stage `chosen`: the model the decision chose, packaged in the fixed folder `chosen/` as an
MLflow model that takes the user's rows as they are (pipeline/serving/package.py), declared
in dvc.yaml's `artifacts:` so DVC's tooling finds it (`dvc artifacts get`).

Which model: with `choose.folds`, the refit's (`refit/model.keras`, trained on every training
and validation row); otherwise the chosen entry's base-seed model (`models/<entry>/model.keras`),
trained on the training split only. The decision's facts go into `chosen/chosen.json` and the
MLmodel's metadata: the entry, what it was trained on, the rule, the figure it was chosen on
with its SE, the test figure with its 95% interval, the entry's L2 rates and weight decay, the
prepared data's digest, and `key`, the digest of the model file, the preparation and these
facts, by which `register` finds its registry version again (the copied code is not in it).
When no entry could be chosen (every entry diverged), `chosen/chosen.json` says so and the
folder holds no model; `register` then registers nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

from pipeline.config import BuilderRef, load_config, resolve_entries
from pipeline.core import contracts
from pipeline.core.files import clean_stale, publish_dir, staging_dir
from pipeline.core.preparation import PREPARATION_FILE
from pipeline.core.runner import run_stage, stop_if_interrupted

log = logging.getLogger(__name__)

NOTHING_CHOSEN = "no entry could be chosen: every entry diverged (see reports/choosing.md)"
REFIT_ROWS, TRAINING_SPLIT = "training and validation rows", "training split only"


def chosen_facts(
    config, decision: dict, models_dir: Path, prepared_dir: Path, refit_dir: Path
) -> dict:
    """What the packaged model is and why: chosen.json without its key."""
    from pipeline.choosing.decision import Decision

    found = Decision.from_json(decision)
    entry = next(
        e for e in resolve_entries(config, contracts.read_sweep_record(models_dir))
        if e.name == found.chosen.name
    )  # fmt: skip
    meta = contracts.read_meta(prepared_dir)
    refit = found.refit is not None
    test_value, test_low, test_high = found.answer  # the refit's with folds
    # Named from the project root, as dvc.yaml names them: the same in every checkout.
    shown = model_file(refit, entry.name, Path(models_dir.name), Path(refit_dir.name))
    return {
        **fine_tuning_facts(config, entry),
        "entry": entry.name,
        "model": shown.as_posix(),
        "trained_on": REFIT_ROWS if refit else TRAINING_SPLIT,
        "train_rows": found.refit.train_rows if refit else meta.rows["train"],
        "task": found.task,
        "rule": found.choice.rule,
        "rule_asked": found.rule_asked,
        "figure": found.figure,
        "figure_value": contracts.rounded(found.chosen.value),
        "figure_se": contracts.rounded(found.chosen.se),
        "test_figure": found.test_figure,
        "test_value": contracts.rounded(test_value),
        "test_ci_low": contracts.rounded(test_low),
        "test_ci_high": contracts.rounded(test_high),
        "test_interval": found.test_interval,
        "test_rows": found.refit.test_rows if refit else found.test_rows,
        "l2_rates": dict(entry.layer_rates),
        "weight_decay": entry.weight_decay,
        # The same digest as the model key's `data` (model_store/key.py).
        "data_digest": contracts.folder_digest(prepared_dir),
    }


def fine_tuning_facts(config, entry) -> dict:
    """Where the chosen model started and what held it there; nothing without a start model,
    so a from-scratch sweep's chosen.json stays as it was."""
    if config.model.start_from is None:
        return {}
    tuning = entry.tuning
    return {
        "start_from": config.model.start_from if tuning.from_start else None,
        "l2_sp_rates": dict(tuning.sp_rates),
        "frozen": list(tuning.frozen),
    }


def model_file(refit: bool, entry: str, models_dir: Path, refit_dir: Path) -> Path:
    if refit:
        return refit_dir / contracts.MODEL_FILE
    return contracts.model_dir(models_dir, entry) / contracts.MODEL_FILE


def chosen_key(keras_file: Path, preparation_file: Path, facts: dict) -> str:
    """SHA-256 of the model's bytes, the preparation's and the facts: the same chosen model,
    the same key, whatever code packaged it."""
    digest = hashlib.sha256()
    for path in (keras_file, preparation_file):
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(facts, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def package_chosen(
    params: Path, prepared_dir: Path, models_dir: Path, refit_dir: Path, out_dir: Path
) -> None:
    config = load_config(params)
    decision = contracts.read_decision(refit_dir)
    staging = staging_dir(out_dir)
    if decision is None:
        nothing = {"entry": None, "reason": NOTHING_CHOSEN}
        contracts.write_json(staging / contracts.CHOSEN_FILE, nothing)
        publish_dir(staging, out_dir)
        log.warning("%s: nothing packaged -> %s", NOTHING_CHOSEN, out_dir / contracts.CHOSEN_FILE)
        return
    from pipeline.serving.package import package_model

    facts = chosen_facts(config, decision, models_dir, prepared_dir, refit_dir)
    refit = facts["trained_on"] == REFIT_ROWS
    keras_file = model_file(refit, facts["entry"], models_dir, refit_dir)
    preparation_file = prepared_dir / PREPARATION_FILE
    facts["key"] = chosen_key(keras_file, preparation_file, facts)
    builder = BuilderRef.of_params(config.model, params).file
    # package_model publishes its folder over `staging` itself (its own staging beside it);
    # chosen.json joins it there, and only the whole is published as `out_dir`.
    clean_stale(staging)  # what an interrupted package_model left beside `staging`
    package_model(keras_file, preparation_file, staging, builder, facts)
    contracts.write_json(staging / contracts.CHOSEN_FILE, facts)
    stop_if_interrupted()
    publish_dir(staging, out_dir)
    log.info(
        "%s (%s, %d rows), chosen by %s on %s %.4g (SE %.2g); %s %.4g [%.4g, %.4g] -> %s",
        facts["entry"], facts["trained_on"], facts["train_rows"], facts["rule"],
        facts["figure"], facts["figure_value"], facts["figure_se"], facts["test_figure"],
        facts["test_value"], facts["test_ci_low"], facts["test_ci_high"], out_dir,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--refit", type=Path, default=Path("refit"))
    parser.add_argument("--out", type=Path, default=Path("chosen"))
    args = parser.parse_args(argv)
    run_stage(
        "chosen",
        lambda: package_chosen(args.params, args.prepared, args.models, args.refit, args.out),
        outputs=[args.out],
    )


if __name__ == "__main__":
    main()

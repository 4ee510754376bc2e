"""Stage `evaluate@<entry>`: final train/val/test metrics of one model, into DVC and MLflow.

Writes the metrics file declared in `dvc.yaml` and logs the same numbers into the MLflow
run that trained the model. With `base.repeat_seeds`, each extra seed's model is evaluated
into its own run too, and the metrics file adds `<metric>_mean` / `<metric>_std` over all
seeds (the base seed's figures stay the headline ones).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.cli import run_stage
from pipeline.config import load_config
from pipeline.files import REPEATS_DIR

log = logging.getLogger(__name__)


def evaluate(params: Path, entry: str, prepared_dir: Path, model_dir: Path, out: Path) -> None:
    config = load_config(params)
    config.entry(entry)

    from pipeline.runtime import init_tensorflow

    init_tensorflow(config.base.seed)
    from pipeline import data, tracking
    from pipeline.seeds import seed_summary

    splits = {name: data.read_split(prepared_dir, name) for name in data.SPLITS}
    metrics, run_id = evaluate_model(model_dir, splits)
    record = {**metrics, "mlflow_run_id": run_id}
    if config.base.repeat_seeds:
        per_seed, seed_runs = [metrics], {}
        for seed in config.base.repeat_seeds:
            repeat, repeat_run = evaluate_model(model_dir / REPEATS_DIR / f"seed_{seed}", splits)
            with tracking.resumed_run(repeat_run):
                tracking.log_metrics(repeat)
            per_seed.append(repeat)
            seed_runs[str(seed)] = repeat_run
        spread = seed_summary(per_seed)
        record.update(spread, seed_run_ids=seed_runs)
    else:
        spread = {}

    # One reopening of the base seed's run for all it receives.
    with tracking.resumed_run(run_id):
        tracking.log_metrics({**metrics, **spread})
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        partial.replace(out)
        tracking.log_artifact(out)
    log.info(
        "%s: train_err %.3f  val_err %.3f  test_err %.3f  L2 penalty %.4f%s",
        entry,
        metrics["train_error"],
        metrics["val_error"],
        metrics["test_error"],
        metrics["l2_penalty"],
        f"  (over {spread['n_seeds']} seeds: val_err {spread['val_error_mean']:.3f}"
        f" ± {spread['val_error_std']:.3f})"
        if spread
        else "",
    )


def evaluate_model(folder: Path, splits: dict) -> tuple[dict[str, float], str]:
    """Final metrics of the model in `folder`, and the id of the MLflow run that trained it."""
    import keras

    from pipeline import tracking
    from pipeline.metrics import model_metrics

    run_id = tracking.read_run_id(folder)
    model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    return model_metrics(model, splits), run_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entry", required=True, help="sweep entry name in params.yaml")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--model", type=Path, required=True, help="e.g. models/<entry>")
    parser.add_argument("--out", type=Path, required=True, help="e.g. metrics/<entry>.json")
    args = parser.parse_args(argv)
    run_stage(
        "evaluate",
        lambda: evaluate(args.params, args.entry, args.prepared, args.model, args.out),
    )


if __name__ == "__main__":
    main()

"""Stage `evaluate@<entry>`: final train/val/test metrics of one model, into DVC and MLflow.

Writes the metrics file declared in `dvc.yaml` and logs the same numbers into the MLflow
run that trained the model.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.cli import run_stage
from pipeline.config import load_config

log = logging.getLogger(__name__)


def evaluate(params: Path, entry: str, prepared_dir: Path, model_dir: Path, out: Path) -> None:
    config = load_config(params)
    config.entry(entry)

    from pipeline.runtime import init_tensorflow

    init_tensorflow(config.base.seed)
    import keras

    from pipeline import data, tracking
    from pipeline.metrics import model_metrics

    run_id = tracking.read_run_id(model_dir)
    splits = {name: data.read_split(prepared_dir, name) for name in data.SPLITS}
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    metrics = model_metrics(model, splits)
    with tracking.resumed_run(run_id):
        tracking.log_metrics(metrics)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        partial.write_text(
            json.dumps({**metrics, "mlflow_run_id": run_id}, indent=2, sort_keys=True) + "\n"
        )
        partial.replace(out)
        tracking.log_artifact(out)
    log.info(
        "%s: train_err %.3f  val_err %.3f  test_err %.3f  L2 penalty %.4f",
        entry,
        metrics["train_error"],
        metrics["val_error"],
        metrics["test_error"],
        metrics["l2_penalty"],
    )


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

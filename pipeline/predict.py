"""Predictions on a user's new rows, from the command line.

`python -m pipeline.predict --input new.csv --output predictions.csv` uses the registered
chosen model (`models:/<registry.name>@<registry.alias>` in MLflow's store); `--model` takes
another model URI or a packaged model's folder (`chosen/`), and `--entry NAME` a sweep's
model (`models/NAME/model.keras` with `data/prepared/preparation.json`, without MLflow).
A table is a CSV with the training table's columns by name; an array source's examples are
a `.npy` file or a `.npz` file holding one array. The output is a CSV: `prediction` and, for
a classifier, `probability_<label>` per class. A row the model cannot take is refused in one
line naming the column and the fix; nothing is written then (an earlier output stays as it
was).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import contracts
from pipeline.core.errors import DataError
from pipeline.core.runner import run_stage

log = logging.getLogger(__name__)

ARRAY_SUFFIXES = (".npy", ".npz")


def predict(
    input_file: Path,
    output: Path,
    model: str | None,
    entry: str | None,
    params: Path,
    prepared_dir: Path,
    models_dir: Path,
) -> None:
    rows = read_rows(input_file)
    if entry is not None:
        predictor, source = entry_predictor(entry, params, prepared_dir, models_dir), entry
    else:
        from pipeline.serving.loading import load_packaged

        source = model or default_model_uri(params)
        predictor = load_packaged(source)
    predictions = predictor.predict(rows)
    write_csv(predictions, output)
    log.info("%d rows predicted by %s -> %s", len(predictions), source, output)


def read_rows(path: Path):
    """A CSV as `prepare` reads one (the same column types), or a `.npy`/`.npz` array."""
    if not path.is_file():
        raise DataError(f"--input {path}: no such file; give the CSV (or .npy/.npz) to predict")
    if path.suffix in ARRAY_SUFFIXES:
        return _read_array(path)
    from pipeline.datasets.table import read_table

    return read_table(path)


def _read_array(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path.name}: not a readable {path.suffix} file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        if len(loaded.files) != 1:
            raise DataError(
                f"{path.name} holds {len(loaded.files)} arrays ({', '.join(loaded.files)}); "
                f"save the examples to predict as its only array"
            )
        return loaded[loaded.files[0]]


def default_model_uri(params: Path) -> str:
    """`models:/<registry.name>@<registry.alias>`, as params.yaml names them."""
    from pipeline.config import load_config

    registry = load_config(params).registry
    return f"models:/{registry.name}@{registry.alias}"


def entry_predictor(entry: str, params: Path, prepared_dir: Path, models_dir: Path):
    """A sweep entry's model (its folder under `models_dir`) with the preparation."""
    from pipeline.config import BuilderRef, load_config
    from pipeline.core.preparation import read_preparation
    from pipeline.serving.predictor import Predictor, load_keras_model

    keras_file = models_dir / entry / contracts.MODEL_FILE
    if not keras_file.is_file():
        known = sorted(p.parent.name for p in models_dir.glob(f"*/{contracts.MODEL_FILE}"))
        raise DataError(
            f"--entry {entry}: no model at {keras_file}; run `dvc repro train`, or name one "
            f"of {', '.join(known) or 'the entries in params.yaml'}"
        )
    preparation = read_preparation(prepared_dir)
    builder = BuilderRef.of_params(load_config(params).model, params).file
    return Predictor(load_keras_model(keras_file, builder), preparation)


def write_csv(predictions: pd.DataFrame, output: Path) -> None:
    """Written beside `output` and renamed over it: never a partial file under its name."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    predictions.to_csv(partial, index=False)
    os.replace(partial, output)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="a model URI (models:/name@alias) or a model folder")
    source.add_argument("--entry", help="a sweep entry's model under --models")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    args = parser.parse_args(argv)
    run_stage(
        "predict",
        lambda: predict(
            args.input, args.output, args.model, args.entry, args.params, args.prepared,
            args.models,
        ),
        outputs=[args.output],
    )  # fmt: skip


if __name__ == "__main__":
    main()

"""Each model's folder under `models/`, the same bytes whether it trained now or came from
the model store: the standalone Keras model, its weights, `config.json` (the resolved params)
and `history.csv` (per-epoch figures)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pipeline.config import LabConfig, ModelSpec
from pipeline.core import contracts, stable_bytes


def tower_params(config: LabConfig, tower: ModelSpec, data: dict) -> dict:
    """What this model depends on, as logged to MLflow and saved beside the weights; `data`:
    the data settings as applied to its training set (planning.applied_data)."""
    entry = tower.entry
    params = {
        "entry": entry.name,
        # One comparable number per run when all layers share a rate, for the MLflow charts.
        "l2": entry.uniform_rate if entry.uniform_rate is not None else "per-layer",
        "l2_rate": dict(entry.layer_rates),
        "weight_decay": entry.weight_decay,
        "seed": tower.seed,
        "data": data,
        "model": config.model.as_trained(),
        "train": config.train.model_dump(),
    }
    if config.model.start_from is not None:
        tuning = entry.tuning
        params["start"] = config.model.start_from if tuning.from_start else "scratch"
        params["l2_sp_rate"] = dict(tuning.sp_rates)
        params["frozen"] = list(tuning.frozen)
    return params if tower.fold is None else {**params, "fold": tower.fold}


def tower_tags(tower: ModelSpec) -> dict[str, str]:
    tags = {"entry": tower.entry.name, "seed": str(tower.seed)}
    return tags if tower.fold is None else {**tags, "fold": str(tower.fold)}


class HistoryRecorder:
    """An epoch sink that keeps every model's per-epoch metrics, to write them beside it;
    `columns`: the task's epoch metrics (core/task.py), history.csv's columns after `epoch`."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        # model -> epoch -> row
        self.rows: dict[str, dict[int, dict[str, float]]] = {}
        # model -> the numeric environment of the process that trained it (compute.work)
        self.environments: dict[str, dict[str, str]] = {}

    def __call__(self, epoch: int, per_model: dict[str, dict[str, float]]) -> None:
        for name, metrics in per_model.items():
            self.rows.setdefault(name, {})[epoch] = {"epoch": epoch, **metrics}

    def csv_bytes(self, name: str) -> bytes:
        rows = [row for _, row in sorted(self.rows.get(name, {}).items())]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=["epoch", *self.columns])
        writer.writeheader()
        writer.writerows(rows)
        return text.getvalue().encode()


def epochs_of(history: bytes) -> dict[int, dict[str, float]]:
    """A history.csv's rows back as numbers (csv writes floats as repr: exact), under the
    columns it was written with: its task's epoch metrics."""
    rows = csv.DictReader(io.StringIO(history.decode(), newline=""))
    return {
        int(row["epoch"]): {name: float(value) for name, value in row.items() if name != "epoch"}
        for row in rows
    }


def write_model_folder(
    folder: Path, params: dict, history: bytes, model, with_weights_file: bool
) -> None:
    """`model`: the trained Keras model, or None for one that diverged (no model file)."""
    folder.mkdir(parents=True)
    (folder / contracts.CONFIG_FILE).write_text(json.dumps(params, indent=2) + "\n")
    (folder / contracts.HISTORY_FILE).write_bytes(history)
    if model is not None:
        from pipeline.modeling.regularize import saved_as_plain_network

        with saved_as_plain_network(model):
            stable_bytes.save_keras_model(model, folder / contracts.MODEL_FILE)
        if with_weights_file:
            model.save_weights(folder / contracts.WEIGHTS_FILE)

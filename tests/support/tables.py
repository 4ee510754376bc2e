"""Small tables like a user's: numbers, a text column, a boolean, an id to leave out, and a
text label (or a quantity) that the features predict, for tests of preparation and of the
packaged model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.support.params import tiny_params

TARGET = "grade"
ID_COLUMN = "name"


def mixed_table(rows: int = 240, seed: int = 0, regression: bool = False) -> pd.DataFrame:
    """Numbers (one of them whole numbers), a text column of 3 categories, a boolean, an id
    column and a label in text ("low"/"mid"/"high") or, with `regression`, a quantity."""
    rng = np.random.default_rng(seed)
    width = rng.normal(10.0, 3.0, rows).round(2)
    count = rng.integers(0, 9, rows)
    colour = rng.choice(["blue", "green", "red"], rows)
    wet = rng.random(rows) < 0.4
    score = width / 3 + (colour == "red") * 2.0 - wet * 1.5 + rng.normal(0, 0.5, rows)
    frame = pd.DataFrame(
        {
            ID_COLUMN: [f"item {i}" for i in range(rows)],
            "width": width,
            "colour": colour,
            "count": count,
            "wet": wet,
        }
    )
    if regression:
        frame[TARGET] = (score * 10 + 50).round(3)
    else:
        frame[TARGET] = np.select([score < 3, score < 5], ["low", "mid"], "high")
    return frame


def mixed_params(csv_name: str, **data_keys) -> dict:
    """tiny_params for the table written at data/raw/<csv_name>, its id column left out."""
    params = tiny_params()
    params["data"].update(
        source="csv",
        csv_path=f"data/raw/{csv_name}",
        target_column=TARGET,
        drop_columns=[ID_COLUMN],
        **data_keys,
    )
    return params


def write_table(root: Path, frame: pd.DataFrame, csv_name: str) -> Path:
    path = root / "data" / "raw" / csv_name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def split_rows(root: Path, n_rows: int) -> dict[str, np.ndarray]:
    """Which rows of a (complete) table or of the digits each split holds, drawn as prepare
    draws them from `root/params.yaml`."""
    from pipeline.config import load_config
    from pipeline.datasets import load_dataset, prepared

    config = load_config(root / "params.yaml")
    dataset = load_dataset(config.data, project_root=root)
    index = np.arange(n_rows, dtype=np.float32)[:, None]
    splits = prepared.split_dataset(
        index,
        dataset.labels,
        test_fraction=config.data.test_fraction,
        val_fraction=config.data.val_fraction,
        train_subset=config.data.effective_train_subset,
        seed=config.base.seed,
    )
    return {name: split.features[:, 0].astype(int) for name, split in splits.items()}


LAB_MODEL_FILE = "model.keras"


def trained_lab(root: Path, params: dict, epochs: int = 3, seed: int = 5) -> Path:
    """`params` prepared into `root/prepared` and one small MLP trained on its training
    split as the lab trains a model alone (tests/support/reference.py), saved at
    `root/model.keras`; returns that file. Call it from tests that use the `tensorflow`
    fixture."""
    import keras

    from pipeline.config.schema import TrainConfig
    from pipeline.core.contracts import read_meta
    from pipeline.core.task import task_named
    from pipeline.datasets import prepared
    from pipeline.prepare import prepare
    from tests.support.params import write_yaml
    from tests.support.reference import build_mlp, train_alone

    root.mkdir(parents=True, exist_ok=True)
    write_yaml(root / "params.yaml", params)
    prepare(root / "params.yaml", root / "prepared")
    meta = read_meta(root / "prepared")
    task = task_named(meta.task)
    keras.utils.set_random_seed(seed)
    model = build_mlp(
        meta.n_features, meta.n_outputs, [16], "tanh", [0.001, 0.0], name="served",
        output_activation=None if task.is_regression else "softmax",
    )  # fmt: skip
    train_alone(
        model,
        prepared.read_split(root / "prepared", "train"),
        prepared.read_split(root / "prepared", "val"),
        TrainConfig(learning_rate=0.01, batch_size=16, epochs=epochs),
        seed=seed,
        task=task,
        target_std=meta.target_std or 1.0,
    )
    model.save(root / LAB_MODEL_FILE)
    return root / LAB_MODEL_FILE

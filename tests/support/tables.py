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

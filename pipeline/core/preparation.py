"""data/prepared/preparation.json: what `prepare` learned from the data, and the one
implementation that applies it to rows (`prepare` to every split, the packaged model to a
user's new rows).

A table's feature columns (by name, with their kind and a text column's categories), the
columns that are not features, the scaling fitted on the training rows, and how the model's
outputs map back to the user's labels (classes) or units (a regression target). An array
source (digits, image folders, `.npz`) has no column names: its examples are arrays of
`input_shape`. Imports neither TensorFlow nor MLflow, so a served model loads it cheaply.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError

PREPARATION_FILE = "preparation.json"

NUMBER, BOOLEAN, CATEGORY = "number", "boolean", "category"
# One-hot columns are named `<column>=<category>`, as pandas.get_dummies(prefix_sep="=").
ONE_HOT_SEPARATOR = "="


@dataclass(frozen=True)
class Column:
    """A table's feature column as training saw it: a number, a boolean (0/1), or a text
    column one-hot encoded into one 0/1 feature per category (sorted)."""

    name: str
    kind: str  # NUMBER | BOOLEAN | CATEGORY
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == CATEGORY else 1


@dataclass(frozen=True)
class Scaling:
    """The feature scaling fitted on the training rows, as scikit-learn applies it, in the
    same dtypes and order of operations (so the bits match its `transform`): minmax is
    x * factor + offset (MinMaxScaler's scale_ and min_), standard is (x - offset) / factor
    (StandardScaler's mean_ and scale_), in float32 as scikit-learn computes on float32."""

    method: str  # minmax | standard
    offset: np.ndarray
    factor: np.ndarray

    @classmethod
    def of_fitted(cls, scaler, method: str) -> Scaling:
        if method == "minmax":
            return cls(method, scaler.min_, scaler.scale_)
        return cls(method, scaler.mean_, scaler.scale_)

    def applied(self, flat: np.ndarray) -> np.ndarray:
        """`flat` (rows x features, float32) scaled, as float32."""
        x = np.array(flat, dtype=np.float32)  # a copy: scaled in place below, as sklearn does
        offset, factor = self.offset.astype(np.float32), self.factor.astype(np.float32)
        if self.method == "minmax":
            x *= factor
            x += offset
        else:
            x -= offset
            x /= factor
        return x

    def as_json(self) -> dict:
        return {
            "method": self.method,
            # float32 and float64 values both survive a JSON round trip exactly as floats.
            "dtype": {"offset": str(self.offset.dtype), "factor": str(self.factor.dtype)},
            "offset": self.offset.tolist(),
            "factor": self.factor.tolist(),
        }

    @classmethod
    def of_json(cls, payload: dict) -> Scaling:
        dtypes = payload["dtype"]
        return cls(
            payload["method"],
            np.asarray(payload["offset"], dtype=dtypes["offset"]),
            np.asarray(payload["factor"], dtype=dtypes["factor"]),
        )


@dataclass(frozen=True)
class Preparation:
    source: str  # data.source
    task: str  # core/task.py
    input_shape: tuple[int, ...]  # one example as the model takes it
    scaling: Scaling
    # A table's (csv, diabetes) feature columns in training order; () for array sources.
    columns: tuple[Column, ...] = ()
    target_column: str | None = None
    # Columns of the table that are not features (data.drop_columns, empty columns): a new
    # row may carry them; they are ignored.
    ignored_columns: tuple[str, ...] = ()
    # Classification: the user's label for each output, in order (numbers stay numbers).
    labels: tuple = ()
    # Regression: the training rows' target mean and std (the model predicts (y - mean) / std).
    target_mean: float | None = None
    target_std: float | None = None

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def is_table(self) -> bool:
        return bool(self.columns)

    @property
    def feature_names(self) -> list[str]:
        """The encoded features' names, in the model's order."""
        names: list[str] = []
        for column in self.columns:
            if column.kind == CATEGORY:
                names += [f"{column.name}{ONE_HOT_SEPARATOR}{c}" for c in column.categories]
            else:
                names.append(column.name)
        return names

    def model_input(self, rows) -> np.ndarray:
        """A user's rows as the model takes them: encoded, scaled, in the example shape.
        `rows`: a table's DataFrame (columns by name, any order), or for an array source
        arrays of the example's shape (or flattened). Refuses what training never saw."""
        flat = encode_table(rows, self.columns) if self.is_table else self.flat_arrays(rows)
        scaled = self.scaling.applied(flat)
        return scaled.reshape(len(scaled), *self.input_shape)

    def flat_arrays(self, rows) -> np.ndarray:
        values = rows.to_numpy() if isinstance(rows, pd.DataFrame) else np.asarray(rows)
        if values.ndim < 2 or values[0].size != self.n_features:
            raise DataError(
                f"input of shape {values.shape}: the model takes examples of shape"
                f" {self.input_shape} ({self.n_features} values each); send one example per row"
            )
        if values.dtype.kind not in "biuf":
            raise DataError(f"input holds {values.dtype} values; send numbers")
        flat = values.reshape(len(values), -1).astype(np.float32)
        if not np.isfinite(flat).all():
            raise DataError("input has NaN or infinite values; send finite numbers")
        return flat

    def in_target_units(self, standardised: np.ndarray) -> np.ndarray:
        """A regression's standardised outputs in the target's units (float64)."""
        return np.asarray(standardised, np.float64) * self.target_std + self.target_mean


def encode_table(rows: pd.DataFrame, columns: tuple[Column, ...]) -> np.ndarray:
    """A table's rows as the model's features (rows x features, float32): numbers as they
    are, booleans as 0/1, text one-hot over the training categories."""
    if len(rows) == 0:
        raise DataError("no rows to predict; give a header and at least one row")
    parts = [_encoded(rows, column) for column in columns]
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def _encoded(rows: pd.DataFrame, column: Column) -> np.ndarray:
    values = rows[column.name]
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(
            f"column {column.name!r} has an empty cell (row {row + 1}); fill it in (the model"
            f" cannot guess a value) or leave that row out"
        )
    if column.kind == CATEGORY:
        text = values.astype(str)
        unseen = sorted(set(text) - set(column.categories))
        if unseen:
            raise DataError(
                f"column {column.name!r} has {unseen[0]!r}, a category training never saw;"
                f" use one of {', '.join(column.categories)}"
            )
        return np.stack([(text == c).to_numpy(np.float32) for c in column.categories], axis=1)
    if column.kind == BOOLEAN and pd.api.types.is_bool_dtype(values):
        return values.to_numpy(np.float32)[:, None]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        odd = values[pd.to_numeric(values, errors="coerce").isna()]
        example = odd.iloc[0] if len(odd) else values.iloc[0]
        wanted = "True or False" if column.kind == BOOLEAN else "numbers"
        raise DataError(
            f"column {column.name!r} holds {example!r}, not a number; give {wanted} as in training"
        )
    numbers = values.to_numpy(np.float64)
    if not np.isfinite(numbers).all():
        raise DataError(f"column {column.name!r} has infinite values; replace them with numbers")
    return values.to_numpy(np.float32)[:, None]


def check_columns(rows: pd.DataFrame, preparation: Preparation) -> None:
    """A table's rows have every feature column and no column training did not know."""
    given = [str(c) for c in rows.columns]
    known = {c.name for c in preparation.columns}
    missing = [c.name for c in preparation.columns if c.name not in given]
    if missing:
        raise DataError(
            f"column {missing[0]!r} is missing ({len(missing)} of {len(known)} feature columns"
            f" are); the model needs every column it was trained on:"
            f" {', '.join(c.name for c in preparation.columns)}"
        )
    allowed = known | set(preparation.ignored_columns) | {preparation.target_column}
    unknown = [c for c in given if c not in allowed]
    if unknown:
        raise DataError(
            f"column {unknown[0]!r} was not in the training table; remove it (the model's"
            f" columns: {', '.join(c.name for c in preparation.columns)})"
        )


def write_preparation(prepared_dir: Path, preparation: Preparation) -> None:
    payload = asdict(preparation)
    payload["scaling"] = preparation.scaling.as_json()
    payload["input_shape"] = list(preparation.input_shape)
    text = json.dumps(payload, indent=1, sort_keys=True) + "\n"
    (prepared_dir / PREPARATION_FILE).write_text(text)


def read_preparation(path: Path) -> Preparation:
    """`path`: the file, or the folder holding it."""
    path = path / PREPARATION_FILE if path.is_dir() else path
    try:
        payload = json.loads(path.read_text())
        return Preparation(
            **{
                **payload,
                "input_shape": tuple(payload["input_shape"]),
                "scaling": Scaling.of_json(payload["scaling"]),
                "columns": tuple(
                    Column(c["name"], c["kind"], tuple(c["categories"])) for c in payload["columns"]
                ),
                "ignored_columns": tuple(payload["ignored_columns"]),
                "labels": tuple(payload["labels"]),
            }
        )
    except FileNotFoundError:
        raise DataError(f"{path}: the preparation is missing; run `dvc repro prepare`") from None
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}: unreadable; run `dvc repro -f prepare`") from None

"""A Keras model and its preparation, as one function of a user's raw rows; and the model
loaded as the lab's stages load it (TensorFlow set up alike, a builder's layers known).

Computes what the lab's evaluation computes (pipeline/modeling/metrics.py): every row in
one forward pass with `training=False`, the class by argmax of the outputs, a regression's
value put back into the target's units; so its labels are the lab's, exactly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.core.preparation import Preparation, check_columns
from pipeline.core.task import REGRESSION

PREDICTION = "prediction"
PROBABILITY_PREFIX = "probability_"


def import_builder(path: Path) -> None:
    """Import a user's builder file as the lab's stages do (pipeline/modeling/builders.py,
    the same module name): the custom layers it registers
    (`keras.saving.register_keras_serializable`) become known to Keras."""
    name = f"lab_builder_{path.stem}"
    if getattr(sys.modules.get(name), "__file__", None) == str(path):
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # No __pycache__ inside the model's folder: a DVC output, hashed as it was written.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    sys.modules[name] = module


def load_keras_model(keras_file: Path, builder_file: Path | None = None):
    """The saved Keras model, in a TensorFlow set up as the lab's stages set it up (the
    same oneDNN kernels, so the same bits: pipeline/core/runtime.py). TensorFlow reads that
    set-up at its import: a process that imported it before keeps its own."""
    from pipeline.core.runtime import set_tensorflow_environment

    set_tensorflow_environment()
    import keras

    if builder_file is not None:
        import_builder(builder_file)
    # Not compiled: predicting needs the weights only, not the optimizer's state.
    return keras.saving.load_model(keras_file, safe_mode=True, compile=False)


class Predictor:
    """A model of the lab and the preparation of the data it was trained on."""

    def __init__(self, keras_model, preparation: Preparation):
        self.model = keras_model
        self.preparation = preparation

    @property
    def columns(self) -> list[str]:
        """The output's columns: the prediction, then each class's probability."""
        labels = self.preparation.labels
        return [PREDICTION, *(f"{PROBABILITY_PREFIX}{label}" for label in labels)]

    def predict(self, rows) -> pd.DataFrame:
        """`rows`: a table's DataFrame (its columns by name, any order; the target and
        ignored columns may be there), or for an array source arrays of the example shape.
        Returns `prediction` (the user's label, or the value in the target's units, float64)
        and, for a classifier, `probability_<label>` per class in the labels' order (the
        model's float32 outputs). Rows the preparation cannot take raise a one-line
        DataError naming the column."""
        import keras

        preparation = self.preparation
        if preparation.is_table:
            if not isinstance(rows, pd.DataFrame):
                raise DataError(
                    f"the model takes a table with the columns {', '.join(_names(preparation))}"
                    f", not {type(rows).__name__}; send rows with named columns"
                )
            check_columns(rows, preparation)
        features = preparation.model_input(rows)
        outputs = keras.ops.convert_to_numpy(self.model(features, training=False))
        index = rows.index if isinstance(rows, pd.DataFrame) else None
        if preparation.task == REGRESSION:
            values = preparation.in_target_units(outputs.astype(np.float64).reshape(-1))
            return pd.DataFrame({PREDICTION: values}, index=index)
        labels = np.asarray(preparation.labels)
        columns = {PREDICTION: labels[np.argmax(outputs, axis=1)]}
        for position, name in enumerate(self.columns[1:]):
            columns[name] = outputs[:, position]
        return pd.DataFrame(columns, index=index)


def _names(preparation: Preparation) -> list[str]:
    return [column.name for column in preparation.columns]

"""The packaged model as MLflow loads it: `LabModel`, a pyfunc model over `Predictor`.

Its artifacts are the Keras file (`model`), the preparation (`preparation`) and, for a
model built by a user's builder file, that file (`builder`): imported first, so custom
layers it registers are known when Keras reads the model.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST

from pipeline.core.errors import DataError
from pipeline.core.preparation import read_preparation
from pipeline.serving.predictor import Predictor, import_builder, load_keras_model

__all__ = ["LabModel", "Predictor", "import_builder", "load_keras_model"]

MODEL, PREPARATION, BUILDER = "model", "preparation", "builder"


class LabModel(mlflow.pyfunc.PythonModel):
    """`predict` takes a user's raw rows (a table's DataFrame, or arrays of the example
    shape) and returns `Predictor.predict`'s DataFrame; a row it cannot take raises an
    MlflowException (BAD_REQUEST over HTTP) whose one-line message names the column."""

    def load_context(self, context) -> None:
        artifacts = context.artifacts
        builder = Path(artifacts[BUILDER]) if BUILDER in artifacts else None
        keras_model = load_keras_model(Path(artifacts[MODEL]), builder)
        self.predictor = Predictor(keras_model, read_preparation(Path(artifacts[PREPARATION])))

    # The hint keeps MLflow from converting the input (it validates no DataFrame schema); an
    # array source's arrays are taken as they come.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            return self.predictor.predict(model_input)
        except DataError as exc:
            raise MlflowException(str(exc), error_code=BAD_REQUEST) from None

"""The packaged model as MLflow loads it: `LabModel`, a pyfunc model over `Predictor`.

Its artifacts are the Keras file (`model`), the preparation (`preparation`) and, for a
model built by a user's builder file, that file (`builder`): imported first, so custom
layers it defines or registers are known when Keras reads the model.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST

from pipeline.core.errors import DataError
from pipeline.core.preparation import read_preparation
from pipeline.serving.predictor import Predictor

__all__ = ["LabModel", "Predictor", "import_builder", "load_keras_model"]

MODEL, PREPARATION, BUILDER = "model", "preparation", "builder"


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
    same oneDNN kernels, so the same bits: pipeline/core/runtime.py)."""
    from pipeline.core.runtime import set_tensorflow_environment

    set_tensorflow_environment()
    import keras

    if builder_file is not None:
        import_builder(builder_file)
    # Not compiled: predicting needs the weights only, not the optimizer's state.
    return keras.saving.load_model(keras_file, safe_mode=True, compile=False)


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

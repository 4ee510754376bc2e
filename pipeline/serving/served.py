"""What MLflow runs to load a packaged model ("models from code": no pickle). Not imported
by the lab; package.py names it as the python_model."""

import sys

from mlflow.models import set_model

# No __pycache__ inside the model's folder (its `code/`): a DVC output.
writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
try:
    from pipeline.serving.model import LabModel
finally:
    sys.dont_write_bytecode = writes_bytecode

set_model(LabModel())

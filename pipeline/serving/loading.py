"""A packaged model by URI, for the lab's own command line (pipeline/predict.py): a folder,
or a registry URI (`models:/<name>@<alias>`) resolved in the project's MLflow store. Not
part of a packaged model's code."""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException

from pipeline.core.errors import DataError


class PackagedModel:
    """A loaded pyfunc model whose refusals are the lab's one-line DataErrors."""

    def __init__(self, pyfunc_model):
        self.pyfunc_model = pyfunc_model

    def predict(self, rows):
        try:
            return self.pyfunc_model.predict(rows)
        except MlflowException as exc:
            raise DataError(exc.message) from None


def load_packaged(uri: str) -> PackagedModel:
    import mlflow.pyfunc

    if not Path(uri).is_dir():
        from pipeline.tracking.store import connect

        connect()
    try:
        return PackagedModel(mlflow.pyfunc.load_model(uri))
    except (MlflowException, OSError) as exc:
        reason = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0]
        raise DataError(
            f"model {uri!r} cannot be loaded ({reason}); register the chosen model with "
            f"`dvc repro`, or give --model a packaged model's folder or --entry a sweep entry"
        ) from None

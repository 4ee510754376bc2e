"""A packaged model by URI, for the lab's own command line (pipeline/predict.py): a folder,
or a registry URI (`models:/<name>@<alias>`) resolved in the project's MLflow store. Not
part of a packaged model's code."""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException

from pipeline.core.errors import DataError

# URIs resolved in the project's MLflow store.
REGISTRY_SCHEMES = ("models:/", "runs:/")


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

    if "://" not in uri and ":/" not in uri and not Path(uri).is_dir():
        raise DataError(
            f"model {uri!r} is not a folder; give --model a packaged model's folder (such as"
            f" chosen/) or a registry URI (models:/<name>@<alias>)"
        )
    if uri.startswith(REGISTRY_SCHEMES):
        from pipeline.core.project_root import project_root
        from pipeline.tracking.store import connect, tracking_uri, uses_default_store

        store = Path(tracking_uri(project_root()).removeprefix("sqlite:///"))
        if uses_default_store() and not store.is_file():
            # Not created here: a store with no registered model is no use to predict.
            raise DataError(
                f"model {uri!r}: no MLflow store at {store}; run the pipeline (`dvc repro`) "
                f"in this project first, or give --model a packaged model's folder"
            )
        connect()
    try:
        return PackagedModel(mlflow.pyfunc.load_model(uri))
    except (MlflowException, OSError) as exc:
        reason = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0]
        raise DataError(
            f"model {uri!r} cannot be loaded ({reason}); register the chosen model with "
            f"`dvc repro`, or give --model a packaged model's folder or --entry a sweep entry"
        ) from None

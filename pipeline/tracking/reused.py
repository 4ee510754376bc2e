"""The run of a model the model store held (pipeline/model_store): its per-epoch metrics and
a pointer to the run that trained it, instead of a second copy of the same weights."""

from __future__ import annotations

from collections.abc import Mapping

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.tracking import records


def run_exists(run_id: str | None) -> bool:
    if not run_id:
        return False
    try:
        MlflowClient().get_run(run_id)
    except MlflowException:
        return False
    return True


def record_reused(
    run_id: str,
    stored,
    epochs: Mapping[int, Mapping[str, float]],
    model,
    input_example,
    tower,
) -> str | None:
    """Tag run `run_id` of `tower` (a config.ModelSpec) as reused from the run that trained
    `stored` (a model_store.StoredModel) and log its `epochs`; returns its model URI: that
    run's, or the model logged here when that run is not in this tracking store (another
    server, a deleted run)."""
    logger = records.EpochMetricsLogger({tower.name: run_id})
    for epoch, metrics in sorted(epochs.items()):
        logger(epoch, {tower.name: dict(metrics)})
    logger.flush()
    trained_by = stored.trained_by
    tags = {"reused": "true", "reused_from_run": trained_by.get("run_id") or ""}
    model_uri = trained_by.get("model_uri")
    if tower.fold is None and stored.diverged_at_epoch is None:
        if not model_uri or not run_exists(trained_by.get("run_id")):
            model_uri = records.log_keras_model(run_id, model, input_example)
        tags["model_uri"] = model_uri
    records.set_tags(run_id, tags)
    return model_uri

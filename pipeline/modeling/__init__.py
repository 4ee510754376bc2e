"""The models: built, given their L2 rates, fused into towers, trained and measured (Keras).

`builders`: `mlp`, `cnn` or a user's builder, each model built as if alone, with the task's
head (checked by `model_checks`). `regularize`: L2 attached per layer by cloning, as Keras
defines it. `towers`: many models as towers of one graph (`graph`), trained by one `fit` with
one optimizer (`optimizer`) on the task's loss (`objective`); the refit is a group of one on
the same path. `metrics`: the figures `evaluate` computes from a trained model.
"""

from pipeline.modeling.builders import build_tower, regularizable_names
from pipeline.modeling.metrics import kernel_arrays, model_metrics, predicted_classes
from pipeline.modeling.towers import Tower

__all__ = [
    "Tower",
    "build_tower",
    "kernel_arrays",
    "model_metrics",
    "predicted_classes",
    "regularizable_names",
]

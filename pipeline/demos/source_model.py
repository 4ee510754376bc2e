"""The source model the fine-tuning demonstration starts from: an MLP trained on digits 0-4,
made here because no pretrained weights can be downloaded. One seed fixes the held-out rows,
the initial weights and the batch order; with the lab's TensorFlow set-up
(core/runtime.py) the same seed gives the same weights, bit for bit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from pipeline.core.runtime import init_tensorflow
from pipeline.demos.digit_tasks import Task

HELD_OUT = 0.2  # of the source rows, kept out of training to show the model is good on 0-4


@dataclass(frozen=True)
class SourceSettings:
    hidden_units: tuple[int, ...]
    activation: str
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int


@dataclass(frozen=True)
class SourceModel:
    path: Path
    train_rows: int
    held_out_rows: int
    held_out_error: float
    weights_sha256: str  # over every weight array in model order: equal digests, same weights


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def build_network(n_features: int, n_classes: int, settings: SourceSettings):
    """The MLP with the lab's layer names (hidden_1, ..., output), so `l2`, `l2_sp` and
    `freeze` name the same layers in the demo's params as in the docs."""
    import keras

    inputs = keras.Input(shape=(n_features,), name="pixels")
    x = inputs
    for i, units in enumerate(settings.hidden_units, 1):
        x = keras.layers.Dense(units, activation=settings.activation, name=f"hidden_{i}")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="source")


def train_source(task: Task, settings: SourceSettings, path: Path) -> SourceModel:
    """Train on all but HELD_OUT of the source rows (stratified), save to `path` (.keras)."""
    init_tensorflow(settings.seed)
    import keras

    classes, labels = np.unique(task.labels, return_inverse=True)
    x_train, x_held, y_train, y_held = train_test_split(
        task.features, labels, test_size=HELD_OUT, stratify=labels, random_state=settings.seed
    )
    model = build_network(task.features.shape[1], len(classes), settings)
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss="sparse_categorical_crossentropy",
    )
    model.fit(x_train, y_train, batch_size=settings.batch_size, epochs=settings.epochs, verbose=0)
    predicted = np.argmax(model.predict(x_held, verbose=0), axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return SourceModel(
        path=path,
        train_rows=len(y_train),
        held_out_rows=len(y_held),
        held_out_error=float(np.mean(predicted != y_held)),
        weights_sha256=weights_digest(model),
    )

"""The checks a built network passes before L2 is attached: one input of the data's shape and
the task's head (a softmax over the classes, or one value per row), each failure one line
naming the builder and the fix."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.core.errors import ConfigError

Shape = tuple[int, ...]


def check_shape(
    model: keras.Model,
    where: str,
    input_shape: Shape,
    fix: str = "build keras.Input(shape=input_shape)",
) -> None:
    """One input of the data's shape and one output; `where`: the setting that gave the
    model (`model.builder = ...`, `model.start_from = ...`), `fix`: what to do about a shape
    that differs."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(
            f"{where}: the model has {len(model.inputs)} inputs and {len(model.outputs)} "
            f"outputs; the lab trains models with one input and one output"
        )
    given = tuple(model.inputs[0].shape[1:])
    if given != tuple(input_shape):
        raise ConfigError(
            f"{where}: the model takes inputs of shape {given}, the prepared data has "
            f"{tuple(input_shape)}; {fix}"
        )


def check_classifier(model: keras.Model, spec: str, input_shape: Shape, n_classes: int) -> None:
    where = f"model.builder = {spec!r}"
    if tuple(model.outputs[0].shape[1:]) != (n_classes,):
        raise ConfigError(
            f"{where}: the model's output has shape {tuple(model.outputs[0].shape[1:])}, the "
            f"data has {n_classes} classes; end with Dense(n_classes, activation='softmax')"
        )
    probe = keras.ops.convert_to_numpy(model(np.zeros((2, *input_shape), np.float32)))
    if not (np.all(probe >= 0) and np.allclose(probe.sum(axis=1), 1.0, atol=1e-3)):
        raise ConfigError(
            f"{where}: the model's outputs are not probabilities (the lab's loss expects a "
            f"softmax); end with Dense(n_classes, activation='softmax')"
        )


def check_regression_head(model: keras.Model, spec: str, input_shape: Shape) -> None:
    """One value per row, not squashed by a softmax (over one unit it is always 1)."""
    shape = tuple(model.outputs[0].shape[1:])
    fix = "end with Dense(1) and no activation (it predicts the standardised target)"
    if shape != (1,):
        raise ConfigError(
            f"model.builder = {spec!r}: the model's output has shape {shape} per row; the "
            f"target is a quantity (a regression), which needs shape (1,): {fix}"
        )
    if always_one(model, input_shape):
        raise ConfigError(
            f"model.builder = {spec!r}: the model's output is 1 for every row, as a softmax "
            f"over one unit always is; the target is a quantity (a regression): {fix}"
        )


def always_one(model: keras.Model, input_shape: Shape) -> bool:
    """Whether the output is exactly 1 on a row of zeros and on a row of ones: a softmax over
    one unit (as a Dense layer's activation, an Activation or a Softmax layer alike)."""
    rows = np.stack([np.zeros(input_shape, np.float32), np.ones(input_shape, np.float32)])
    return bool(np.all(keras.ops.convert_to_numpy(model(rows)) == 1.0))

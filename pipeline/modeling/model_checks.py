"""The checks a built network passes before L2 is attached: a model Keras can clone, with
the data's input and the task's head, each failure one line naming the builder and the fix."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.core.errors import ConfigError

Shape = tuple[int, ...]


def check_user_model(model: object, spec: str, call: str, input_shape: Shape) -> None:
    from keras.src.models.functional import Functional

    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"model.builder = {spec!r}: {call} returned {type(model).__name__}, not a "
            f"keras.Model; return keras.Model(inputs, outputs) or a keras.Sequential"
        )
    if not isinstance(model, Functional | keras.Sequential):
        raise ConfigError(
            f"model.builder = {spec!r}: {call} returned a subclassed model "
            f"({type(model).__name__}), which Keras cannot clone to attach L2; write it with "
            f"the functional API (inputs = keras.Input(shape=input_shape); x = layer(inputs); "
            f"...; return keras.Model(inputs, outputs)) or as a keras.Sequential"
        )
    if isinstance(model, keras.Sequential) and not model.built:
        model.build((None, *input_shape))


def check_shape(model: keras.Model, spec: str, input_shape: Shape) -> None:
    """One input of the data's shape and one output."""
    where = f"model.builder = {spec!r}"
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(
            f"{where}: the model has {len(model.inputs)} inputs and {len(model.outputs)} "
            f"outputs; the lab trains models with one input and one output"
        )
    given = tuple(model.inputs[0].shape[1:])
    if given != tuple(input_shape):
        raise ConfigError(
            f"{where}: the model takes inputs of shape {given}, the prepared data has "
            f"{tuple(input_shape)}; build keras.Input(shape=input_shape)"
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


def check_regression_head(model: keras.Model, spec: str) -> None:
    """One value per row, not squashed by a softmax (over one unit it is always 1)."""
    shape = tuple(model.outputs[0].shape[1:])
    fix = "end with Dense(1) and no activation (it predicts the standardised target)"
    if shape != (1,):
        raise ConfigError(
            f"model.builder = {spec!r}: the model's output has shape {shape} per row; the "
            f"target is a quantity (a regression), which needs shape (1,): {fix}"
        )
    if ends_in_softmax(model):
        raise ConfigError(
            f"model.builder = {spec!r}: the model ends in a softmax, whose one output is "
            f"always 1; the target is a quantity (a regression): {fix}"
        )


def ends_in_softmax(model: keras.Model) -> bool:
    history = getattr(model.outputs[0], "_keras_history", None)
    last = history.operation if history is not None else model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", None) == "softmax"

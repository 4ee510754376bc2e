"""The start model of a fine-tuning sweep (`model.start_from`): a user's `.keras` file, read
as the network every tower begins from, with the head the data needs.

The file gives the architecture and the starting weights. When its output does not fit the
data (another number of classes, a classifier for a quantity) or `model.new_head` asks, the
output layer is replaced by a fresh Dense layer of the same name with the task's head,
initialised from the entry's seed. The layers that kept the file's weights are the ones that
can be held close to them (`l2_sp`); a new head has no starting value.
"""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras

from pipeline.config.builder_ref import BuilderRef
from pipeline.config.entries import ModelLayers
from pipeline.core.errors import ConfigError
from pipeline.core.task import Task
from pipeline.modeling.model_checks import check_classifier, check_regression_head, check_shape
from pipeline.modeling.regularize import all_layers, regularizable_layers

log = logging.getLogger(__name__)

Shape = tuple[int, ...]
KEY = "model.start_from"
# Keras's words for a class it cannot find, deep in a multi-line message about the model.
_UNKNOWN_OBJECT = re.compile(r"Could not locate (class|function) '([^']+)'")


@dataclass(frozen=True)
class StartNetwork:
    model: keras.Model  # the file's network and weights, with a new head when it needs one
    new_head: str | None  # the replaced output layer's name; None: the file's head kept


def load_start_model(path: Path, shown: str) -> keras.Model:
    """The `.keras` file at `path` (`shown`: as params.yaml names it), without its optimizer."""
    if not path.is_file():
        raise ConfigError(
            f"{KEY} = {shown!r}: no such file; put the pretrained model's .keras file under "
            f"pretrained/ and give its path from the project root"
        )
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ConfigError(
            f"{KEY} = {shown!r}: not a Keras model file; save the pretrained model with "
            f"model.save('pretrained/<name>.keras') (Keras 3's format)"
        )
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except TypeError as exc:  # how Keras says it cannot find a class
        found = _UNKNOWN_OBJECT.search(str(exc))
        what = f"its {found[1]} {found[2]!r}" if found else f"({_first_line(exc)})"
        raise ConfigError(
            f"{KEY} = {shown!r}: Keras cannot load the model without the code of {what}; save "
            f"it with Keras's built-in layers only"
        ) from None
    except Exception as exc:  # a damaged or foreign file: any error Keras raises reading it
        raise ConfigError(
            f"{KEY} = {shown!r}: Keras could not read the model ({type(exc).__name__}: "
            f"{_first_line(exc)}); save it again with model.save('pretrained/<name>.keras')"
        ) from None


def start_network(
    builder: BuilderRef, input_shape: Shape, n_outputs: int, task: Task, seed: int
) -> StartNetwork:
    """The start model checked against the data, with a fresh head (seeded by `seed`) when
    its output does not fit or `model.new_head` is set."""
    shown = builder.model.start_from
    model = load_start_model(builder.start_file, shown)
    check_shape(
        model,
        f"{KEY} = {shown!r}",
        input_shape,
        "start from a model trained on inputs like these (same features, data.shape)",
    )
    fits = _head_fits(model, input_shape, n_outputs, task)
    if fits and not builder.model.new_head:
        return StartNetwork(model, None)
    head = _output_layer(model, shown)
    # Seeded here, after loading: how many random numbers Keras drew while reading the file
    # does not move the head's initial weights.
    keras.utils.set_random_seed(seed)
    activation = None if task.is_regression else "softmax"
    fresh = keras.layers.Dense(n_outputs, activation=activation, name=head.name)
    return StartNetwork(keras.Model(model.inputs, fresh(head.input)), head.name)


def fresh_copy(model: keras.Model, seed: int) -> keras.Model:
    """The same architecture with new initial weights drawn from `seed` (`start_from: null`)."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def start_layers(builder: BuilderRef, input_shape: Shape, n_outputs: int, task: Task, seed: int):
    """ModelLayers of the start network: what `l2`, `l2_sp` and `freeze` resolve against; said
    once per stage when the head is replaced."""
    network = start_network(builder, input_shape, n_outputs, task, seed)
    if network.new_head is not None:
        why = "as model.new_head asks" if builder.model.new_head else "its output does not fit"
        log.info(
            "%s: the output layer %r is a new head (%s): %d output(s), initialised from each "
            "entry's seed",
            KEY,
            network.new_head,
            why,
            n_outputs,
        )
    regularizable = [layer.name for layer in regularizable_layers(network.model)]
    if not regularizable:
        raise ConfigError(
            f"{KEY} = {builder.model.start_from!r}: the model has no layer that takes L2 "
            f"(Dense, Conv, SeparableConv, DepthwiseConv, Embedding); there is nothing to tune"
        )
    return ModelLayers(
        regularizable=tuple(regularizable),
        with_start=tuple(n for n in regularizable if n != network.new_head),
        weighted=tuple(layer.name for layer in all_layers(network.model) if layer.weights),
        from_file=True,
    )


def _head_fits(model: keras.Model, input_shape: Shape, n_outputs: int, task: Task) -> bool:
    try:
        if task.is_regression:
            check_regression_head(model, KEY, input_shape)
        else:
            check_classifier(model, KEY, input_shape, n_outputs)
    except ConfigError:
        return False
    return True


def _output_layer(model: keras.Model, shown: str) -> keras.layers.Layer:
    layer = model.outputs[0]._keras_history.operation
    if not isinstance(layer, keras.layers.Dense):
        raise ConfigError(
            f"{KEY} = {shown!r}: its output layer {layer.name!r} is a "
            f"{type(layer).__name__}, and only a Dense output layer can be replaced by a new "
            f"head; end the model with a Dense layer"
        )
    return layer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"

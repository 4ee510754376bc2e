"""What builds the network: the built-in MLP or convnet, or the user's own function in a file.

`model.builder` in params.yaml is `mlp` (the default), `cnn`, or `builders/<file>.py:<function>`.
Every builder returns an unregularized Functional or Sequential `keras.Model`; the L2 rates
are attached afterwards, once, by cloning (regularize.py). `build_tower` is the whole recipe
for one model of the sweep, the same whether it trains alone or as a tower (towers.py):
Keras's layer-name counters reset, the seed set, the network built, L2 attached by cloning
with the built weights copied. So a model has the same layer names, initial weights and
dropout seeds in the sweep as in a process of its own.

The task (core/task.py) decides the head: a classifier ends in a softmax over the classes,
a regression in one linear unit (the standardised prediction). A builder is called with the
output width as `n_classes`: the number of classes, or 1 for a regression.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence

import keras

from pipeline.config.builder_ref import BuilderRef
from pipeline.config.entries import (
    NO_TUNING,
    ModelLayers,
    Tuning,
    cnn_layer_names,
    dense_layer_names,
)
from pipeline.config.schema import BUILDERS_DIR
from pipeline.core.errors import ConfigError
from pipeline.core.task import Task
from pipeline.modeling.model_checks import (
    check_classifier,
    check_regression_head,
    check_shape,
)
from pipeline.modeling.regularize import all_layers, freeze, regularizable_layers, with_l2

Shape = tuple[int, ...]


def output_activation(task: Task) -> str | None:
    """The head's activation: class probabilities, or the value itself (linear)."""
    return None if task.is_regression else "softmax"


def mlp(
    input_shape: Shape,
    n_outputs: int,
    hidden_units: Sequence[int],
    activation: str,
    task: Task,
):
    """`features -> [flatten] -> hidden_1 ... hidden_n -> output` (softmax, or one linear
    unit for a regression), no regularizers.

    Layer names, creation order and initializers are those of the reference MLP built with
    its rates at creation (tests/support/reference.py), so for flat inputs the initial weights
    are identical under the same seed (tests/test_regularize.py).
    """
    inputs = keras.Input(shape=input_shape, name="features")
    # Flatten has no weights and draws no random numbers: image inputs change nothing else.
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    widths = [*hidden_units, n_outputs]
    activations = [activation] * len(hidden_units) + [output_activation(task)]
    for name, width, act in zip(
        dense_layer_names(len(hidden_units)), widths, activations, strict=True
    ):
        x = keras.layers.Dense(width, activation=act, name=name)(x)
    return keras.Model(inputs, x)


def cnn(
    input_shape: Shape,
    n_outputs: int,
    filters: Sequence[int],
    kernel_size: int,
    dense_units: int,
    activation: str,
    task: Task,
):
    """A small convnet: per entry of `filters` a Conv2D (`conv_<i>`, same padding) and a 2x2
    max-pooling (`pool_<i>`), then `flatten`, an optional Dense `dense`, and the `output`
    (softmax, or one linear unit for a regression). No regularizers."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"model.builder = 'cnn' needs images (height, width, channels), but the prepared "
            f"data has shape {input_shape}; set data.shape: image (digits, npz) or use "
            f"data.source: images"
        )
    names = cnn_layer_names(len(filters), bool(dense_units))
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for i, (width, name) in enumerate(zip(filters, names, strict=False), start=1):
        x = keras.layers.Conv2D(
            width, kernel_size, padding="same", activation=activation, name=name
        )(x)
        # `same` pooling never shrinks a side below 1, so any image size works.
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation=activation, name=names[-2])(x)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation(task), name=names[-1])(x)
    return keras.Model(inputs, outputs)


def user_builder(builder: BuilderRef) -> Callable:
    """The function named by `builders/<file>.py:<function>`, imported from the project."""
    spec = builder.model.builder
    file_part, _, function = spec.rpartition(":")
    path = builder.file
    if not path.is_file():
        raise ConfigError(
            f"model.builder = {spec!r}: no file {file_part}; put the builder in "
            f"{BUILDERS_DIR}/ (see {BUILDERS_DIR}/example.py)"
        )
    module_name = f"lab_builder_{path.stem}"
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__file__", None) != str(path):
        loader = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader)
        # No __pycache__ in builders/: it is a DVC dependency, and must only change when
        # the user changes a builder.
        writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            loader.loader.exec_module(module)
        except Exception as exc:  # any error in the user's file is reported
            raise ConfigError(
                f"model.builder = {spec!r}: importing {file_part} failed: "
                f"{type(exc).__name__}: {_first_line(exc)}; fix the file"
            ) from None
        finally:
            sys.dont_write_bytecode = writes_bytecode
        sys.modules[module_name] = module  # custom layers registered there stay loadable
    builder = getattr(module, function, None)
    if not callable(builder):
        defined = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise ConfigError(
            f"model.builder = {spec!r}: {file_part} has no function {function!r}; "
            f"it defines {', '.join(defined) or 'no functions'}"
        )
    return builder


def build_base(
    builder: BuilderRef, input_shape: Shape, n_outputs: int, task: Task
):
    """The unregularized network for `model.builder`, checked to be a cloneable model of the
    task: a classifier over `n_outputs` classes, or a regression's one value per row."""
    if n_outputs != 1 if task.is_regression else n_outputs < 2:
        # A caller's mistake, not the user's: e.g. a regression's 0 classes passed as the
        # width without its task.
        raise ValueError(f"a {task.name} model cannot have {n_outputs} outputs")
    config = builder.model
    if config.builder == "mlp":
        model = mlp(input_shape, n_outputs, config.hidden_units, config.activation, task)
    elif config.builder == "cnn":
        c = config.cnn
        model = cnn(
            input_shape, n_outputs, c.filters, c.kernel_size, c.dense_units, c.activation, task
        )
    else:
        function = user_builder(builder)
        call = (
            f"{config.builder.rpartition(':')[2]}(input_shape={input_shape}, n_classes={n_outputs})"
        )
        try:
            model = function(input_shape, n_outputs)
        except ConfigError:
            raise
        except Exception as exc:  # any error in the builder is reported
            raise ConfigError(
                f"model.builder = {config.builder!r}: {call} raised {type(exc).__name__}: "
                f"{_first_line(exc)}; fix the builder"
            ) from None
        _check_user_model(model, config.builder, call, input_shape)
    check_shape(model, f"model.builder = {config.builder!r}", input_shape)
    if task.is_regression:
        check_regression_head(model, config.builder, input_shape)
    else:
        check_classifier(model, config.builder, input_shape, n_outputs)
    if not regularizable_layers(model):
        raise ConfigError(
            f"model.builder = {config.builder!r}: the model has no layer that takes L2 (Dense, "
            f"Conv, SeparableConv, DepthwiseConv, Embedding); there is nothing to regularize"
        )
    return model


def _check_user_model(model: object, spec: str, call: str, input_shape: Shape) -> None:
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


def regularizable_names(
    builder: BuilderRef, input_shape: Shape, n_outputs: int, task: Task
):
    """The names of the layers that take a rate, in order, as every tower's model has them."""
    return list(model_layers(builder, input_shape, n_outputs, task).regularizable)


def model_layers(
    builder: BuilderRef, input_shape: Shape, n_outputs: int, task: Task, seed: int = 0
) -> ModelLayers:
    """The layers every tower's model has: which take `l2`, which have starting weights
    (`l2_sp`, fine-tuning), which have weights (`freeze`)."""
    _reset_layer_names()
    if builder.fine_tunes:
        from pipeline.modeling.start import start_layers

        return start_layers(builder, input_shape, n_outputs, task, seed)
    base = build_base(builder, input_shape, n_outputs, task)
    names = [layer.name for layer in regularizable_layers(base)]
    return ModelLayers(tuple(names), (), tuple(x.name for x in all_layers(base) if x.weights))


def build_tower(
    builder: BuilderRef,
    input_shape: Shape,
    n_outputs: int,
    rates: Mapping[str, float],
    *,
    seed: int,
    name: str,
    task: Task,
    tuning: Tuning = NO_TUNING,
) -> keras.Model:
    """One model of the sweep, initialised as a process that trains it alone initialises it;
    `n_outputs`: the classes, or 1 for a regression. Fine-tuning (`builder.fine_tunes`): the
    start model's network, with its weights (`tuning.from_start`) or fresh ones, its L2
    toward the start and its frozen layers."""
    # Layers a builder leaves unnamed are numbered by a process-wide counter (dense,
    # dense_1, ...); reset, they get the names they get in a fresh process, so rates given
    # by name reach the same layers in every tower.
    _reset_layer_names()
    keras.utils.set_random_seed(seed)
    source = "model.builder"
    if builder.fine_tunes:
        from pipeline.modeling.start import fresh_copy, start_network

        base = start_network(builder, input_shape, n_outputs, task, seed).model
        if not tuning.from_start:
            base = fresh_copy(base, seed)
        source = f"the start model ({builder.model.start_from})"
    else:
        base = build_base(builder, input_shape, n_outputs, task)
    # The clone's own initializers and dropout seeds are drawn from the seed's stream too,
    # after the base's: the same draws in the sweep and alone. Its weights are the base's;
    # `l2_sp` holds them close to these, the start model's.
    model = with_l2(base, rates, dict(tuning.sp_rates), source)
    freeze(model, tuning.frozen)
    # A single input and output as plain tensors, not one-element lists: Keras warns on every
    # call of a list-structured model with a plain tensor (each prediction, in every stage).
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    return keras.Model(inputs, outputs, name=name)


def _reset_layer_names() -> None:
    from keras.src.utils.naming import reset_uids  # no public API; keras is pinned

    reset_uids()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"

"""Fine-tuning's test material: tiny start models saved as a user saves one (`model.save`
under pretrained/), the tiny params that fine-tune them, and the resolved towers.

Keras is imported inside the functions: call them from tests that use the `tensorflow`
fixture (or from a project's own process)."""

from __future__ import annotations

from pathlib import Path

from tests.support.params import tiny_params

START_FILE = "pretrained/source.keras"
# Entries covering every way a fine-tuning entry trains: from scratch, from the start without
# regularization, L2-SP, L2-SP mixed with plain L2 on the head, and a frozen first layer with
# the BatchNormalization after it.
SWEEP = {
    "scratch": {"start_from": None, "l2": 0.001},
    "tuned": {},
    "held": {"l2_sp": 0.01},
    "mixed": {"l2_sp": {"hidden_*": 0.01}, "l2": {"output": 0.001}},
    "frozen": {"freeze": ["hidden_1", "bn"], "l2_sp": 0.01},
}


def save_start_model(
    path: Path, n_outputs: int = 10, *, n_features: int = 64, head: str | None = "softmax"
) -> None:
    """A small pretrained network as a user would save it: Dense 16 (carrying an L2 of its
    own, which the lab replaces), BatchNormalization `bn`, Dense 12, and the `output` head of
    `n_outputs` units; drawn from a fixed seed, so the file's bytes are the same each time."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(n_features,), name="features")
    x = keras.layers.Dense(
        16, activation="tanh", name="hidden_1", kernel_regularizer=keras.regularizers.L2(0.5)
    )(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dense(12, activation="tanh", name="hidden_2")(x)
    outputs = keras.layers.Dense(n_outputs, activation=head, name="output")(x)
    path.parent.mkdir(parents=True, exist_ok=True)
    keras.Model(inputs, outputs).save(path)


def fine_tuning_params(sweep: dict | None = None, start: str = START_FILE, **model) -> dict:
    """The tiny params fine-tuning `start` with `sweep` (SWEEP by default); `model`: more
    `model:` keys (new_head, ...)."""
    params = tiny_params()
    params["model"].update(start_from=start, **model)
    params["sweep"] = SWEEP if sweep is None else sweep
    return params


def resolved(params_path: Path, input_shape, n_outputs: int, task):
    """(BuilderRef, ModelLayers, entries) of the params at `params_path`, as `train` resolves
    them: the layers read from the start network."""
    from pipeline.config import BuilderRef, load_config, resolve_entries
    from pipeline.modeling.builders import model_layers

    config = load_config(params_path)
    builder = BuilderRef.of_params(config.model, params_path)
    layers = model_layers(builder, tuple(input_shape), n_outputs, task, config.base.seed)
    return builder, layers, resolve_entries(config, layers)


def build(builder, entry, input_shape, n_outputs: int, task, seed: int):
    """The entry's tower, as every path (fused, alone, workers, refit) builds it."""
    from pipeline.modeling.builders import build_tower

    return build_tower(
        builder, tuple(input_shape), n_outputs, dict(entry.layer_rates),
        seed=seed, name=entry.name, task=task, tuning=entry.tuning,
    )  # fmt: skip

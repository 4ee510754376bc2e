"""Fine-tuning's bad input: each mistake is refused in one line that names the key and the fix,
when params.yaml is read or when the start model is read against the data, as `prepare` reads
both before DVC removes any output (one of them through a real `dvc repro`:
tests/test_fine_tuning_pipeline.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import load_config, resolve_entries
from pipeline.core.errors import ConfigError
from pipeline.core.task import CLASSIFICATION_TASK
from tests.support.params import tiny_params, write_yaml
from tests.support.start_models import fine_tuning_params, resolved, save_start_model

# A model with a layer class of its own, saved where that class is registered; loading it
# needs the class's code, which the lab's process does not have.
CUSTOM = """
import keras, sys

@keras.saving.register_keras_serializable(package="mine")
class Doubling(keras.layers.Layer):
    def call(self, x):
        return 2 * x

inputs = keras.Input(shape=(64,))
x = Doubling(name="doubling")(keras.layers.Dense(8, name="hidden_1")(inputs))
keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="output")(x)).save(
    sys.argv[1]
)
"""


def _refusal(root: Path, params: dict, *, with_start: bool = True) -> str:
    """The one-line ConfigError that reading `params` (and its start model against the tiny
    digits: 64 features, 10 classes) raises."""
    write_yaml(root / "params.yaml", params)
    with pytest.raises(ConfigError) as caught:
        if with_start:
            resolved(root / "params.yaml", (64,), 10, CLASSIFICATION_TASK)
        else:
            resolve_entries(load_config(root / "params.yaml"))
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def root(tmp_path_factory, tensorflow) -> Path:
    folder = tmp_path_factory.mktemp("refusals")
    save_start_model(folder / "pretrained" / "source.keras")
    save_start_model(folder / "pretrained" / "five.keras", 5)
    save_start_model(folder / "pretrained" / "narrow.keras", n_features=8)
    (folder / "pretrained" / "notes.keras").write_text("not a model\n")
    return folder


def test_a_missing_start_file_is_refused(root):
    message = _refusal(root, fine_tuning_params(start="pretrained/missing.keras"))
    assert message.startswith("model.start_from = 'pretrained/missing.keras': no such file;")
    assert "put the pretrained model's .keras file under pretrained/" in message


def test_a_file_that_is_not_a_keras_model_is_refused(root):
    message = _refusal(root, fine_tuning_params(start="pretrained/notes.keras"))
    assert message.startswith("model.start_from = 'pretrained/notes.keras': not a Keras model")
    assert "model.save('pretrained/<name>.keras')" in message


def test_a_model_whose_input_does_not_fit_the_data_is_refused(root):
    message = _refusal(root, fine_tuning_params(start="pretrained/narrow.keras"))
    assert message.startswith("model.start_from = 'pretrained/narrow.keras': the model takes")
    assert "inputs of shape (8,), the prepared data has (64,)" in message


@pytest.mark.parametrize("l2_sp", [[0.01, 0.01, 0.01], {"output": 0.01}])
def test_l2_sp_on_a_new_head_is_refused(root, l2_sp):
    params = fine_tuning_params({"held": {"l2_sp": l2_sp}}, start="pretrained/five.keras")
    message = _refusal(root, params)
    assert message.startswith("sweep.held.l2_sp: layer 'output' is a new head")
    assert "give it l2 instead (the layers with a start are hidden_1, hidden_2)" in message


def test_a_freeze_pattern_that_matches_no_layer_is_refused(root):
    message = _refusal(root, fine_tuning_params({"frozen": {"freeze": ["conv_*"]}}))
    assert message == (
        "sweep.frozen.freeze: 'conv_*' matches no layer with weights; the layers are hidden_1,"
        " bn, hidden_2, output"
    )


def test_a_model_keras_cannot_load_without_its_code_is_refused(root):
    path = root / "pretrained" / "custom.keras"
    subprocess.run([sys.executable, "-c", CUSTOM, str(path)], check=True, timeout=300)
    message = _refusal(root, fine_tuning_params(start="pretrained/custom.keras"))
    assert message == (
        "model.start_from = 'pretrained/custom.keras': Keras cannot load the model without the"
        " code of its class 'Doubling'; save it with Keras's built-in layers only"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": {"builder": "cnn"}}, "model.start_from and model.builder = 'cnn' both give"
         " the architecture; the start model's file is the network: remove model.builder"),
        ({"sweep": {"a": {"start_from": "x"}}}, 'sweep.a.start_from = "x": can only be null'),
    ],
)  # fmt: skip
def test_params_that_contradict_the_start_model_are_refused(root, change, expected):
    params = fine_tuning_params()
    params["model"].update(change.get("model", {}))
    params["sweep"].update(change.get("sweep", {}))
    message = _refusal(root, params)
    assert message.startswith(f"{root / 'params.yaml'}: ") and expected in message, message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"l2_sp": 0.01}, "sweep.a.l2_sp needs a start model; set model.start_from to a .keras"
         " file under pretrained/ or remove l2_sp"),
        ({"freeze": ["hidden_1"]}, "sweep.a.freeze needs a start model; set model.start_from"
         " to a .keras file under pretrained/ or remove freeze"),
    ],
)  # fmt: skip
def test_tuning_keys_without_a_start_model_are_refused_when_params_are_read(root, change, expected):
    params = tiny_params()
    params["sweep"]["a"] = change
    write_yaml(root / "params.yaml", params)
    with pytest.raises(ConfigError) as caught:
        load_config(root / "params.yaml")  # the MLP's entries: before any Keras
    assert str(caught.value) == f"{root / 'params.yaml'}: {expected}"


def test_new_head_without_a_start_model_is_refused(root):
    params = tiny_params()
    params["model"]["new_head"] = True
    message = _refusal(root, params, with_start=False)
    assert message == (
        f"{root / 'params.yaml'}: model.new_head = true needs a start model; set"
        f" model.start_from or remove new_head"
    )

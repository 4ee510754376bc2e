"""params.yaml messages speak YAML: values as the user wrote them, counts in good English,
and a hint when a number was quoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.core.errors import ConfigError
from tests.support.params import tiny_params, write_yaml


def _message(tmp_path: Path, edit) -> str:
    params = tiny_params()
    edit(params)
    path = tmp_path / "params.yaml"
    write_yaml(path, params)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message
    return message.removeprefix(f"{path}: ")


def _setter(section: str, key: str, value):
    def edit(params: dict) -> None:
        params[section][key] = value

    return edit


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("train", "epochs", "10", 'train.epochs = "10": must be a whole number; remove the quotes'),
        ("base", "seed", "42", 'base.seed = "42": must be a whole number; remove the quotes'),
        (
            "train",
            "learning_rate",
            "1e-3",
            'train.learning_rate = "1e-3": must be a number; remove',
        ),
        ("train", "learning_rate", True, "train.learning_rate = true: must be a number (`true`"),
        ("data", "label_noise", False, "data.label_noise = false: must be a number"),
        ("base", "experiment", None, "base.experiment = null: must be text"),
        ("model", "hidden_units", None, "model.hidden_units is missing or null: the MLP"),
        ("model", "activation", "tanhh", 'model.activation = "tanhh": must be one of'),
    ],
)
def test_values_are_shown_as_yaml(tmp_path: Path, section: str, key: str, value, expected: str):
    message = _message(tmp_path, _setter(section, key, value))
    assert message.startswith(expected), message
    for python_word in ("None", "True", "False", "'10'", "Input should be a valid"):
        assert python_word not in message, message


def test_a_quoted_rate_suggests_removing_the_quotes(tmp_path: Path):
    def edit(params: dict) -> None:
        params["sweep"]["plain"]["l2"] = "0.01"

    message = _message(tmp_path, edit)
    assert message.startswith('sweep.plain.l2 = "0.01": an L2 rate must be a finite number')
    assert message.endswith("remove the quotes to make it a number")


def test_a_quoted_rate_in_a_list_suggests_removing_the_quotes(tmp_path: Path):
    def edit(params: dict) -> None:
        params["sweep"]["layerwise"]["l2"] = [0.01, "0.001", 0.0]

    message = _message(tmp_path, edit)
    assert message.startswith('sweep.layerwise.l2 = [0.01, "0.001", 0.0]: ')
    assert "remove the quotes" in message


@pytest.mark.parametrize("text", ["abc", "nan", "0x10"])
def test_quoted_text_that_is_no_finite_number_gets_no_quote_hint(tmp_path: Path, text: str):
    message = _message(tmp_path, _setter("train", "epochs", text))
    assert message.startswith(f'train.epochs = "{text}": must be a whole number')
    assert "quotes" not in message


def test_an_empty_entry_says_null_and_what_is_expected(tmp_path: Path):
    def edit(params: dict) -> None:
        params["sweep"]["plain"] = None

    message = _message(tmp_path, edit)
    assert message.startswith("sweep.plain = null: must be a mapping of keys")
    assert "SweepEntry" not in message and "dictionary" not in message


@pytest.mark.parametrize(
    ("hidden", "rates", "expected"),
    [
        ([16, 16], [0.1], "has 1 rate but the model has 3 Dense layers (2 hidden + output)"),
        ([16, 16], [0.1, 0.1], "has 2 rates but the model has 3 Dense layers"),
        ([16], [0.1, 0.1, 0.1], "has 3 rates but the model has 2 Dense layers (1 hidden + output)"),
    ],
)
def test_rate_counts_are_singular_or_plural(tmp_path: Path, hidden, rates, expected: str):
    def edit(params: dict) -> None:
        params["model"]["hidden_units"] = hidden
        params["sweep"]["layerwise"]["l2"] = rates

    assert expected in _message(tmp_path, edit)


def test_repeat_seeds_are_shown_as_a_yaml_list(tmp_path: Path):
    def edit(params: dict) -> None:
        params["base"].update(seed=42, repeat_seeds=[43, 43])

    assert _message(tmp_path, edit).startswith("base.repeat_seeds = [43, 43]: each extra seed")


@pytest.mark.parametrize(
    ("bad_keys", "more"), [(2, "(and 1 more problem)"), (3, "(and 2 more problems)")]
)
def test_further_problems_are_counted(tmp_path: Path, bad_keys: int, more: str):
    def edit(params: dict) -> None:
        for key in ("epochs", "batch_size", "learning_rate")[:bad_keys]:
            params["train"][key] = "x"

    assert _message(tmp_path, edit).endswith(more)


def _set_path(params: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = params
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


# Every numeric (and length- or pattern-bound) key with a value out of its bounds, and the
# start of the message in the project's words.
OUT_OF_BOUNDS = [
    ("base.seed", -1, "base.seed = -1: must be at least 0"),
    ("base.seed", 2**31, "base.seed = 2147483648: must be at most 2147483647"),
    ("base.repeat_seeds", [-3], "base.repeat_seeds.0 = -3: must be at least 0"),
    ("base.experiment", "", 'base.experiment = "": must not be empty'),
    ("data.image_size", [0, 8], "data.image_size.0 = 0: must be at least 1"),
    ("data.image_size", [8], "data.image_size = [8]: needs at least 2 item(s)"),
    ("data.test_fraction", 0.0, "data.test_fraction = 0.0: must be greater than 0"),
    ("data.val_fraction", 1.0, "data.val_fraction = 1.0: must be less than 1"),
    ("data.train_subset", 1, "data.train_subset = 1: must be at least 2"),
    ("data.label_noise", -0.1, "data.label_noise = -0.1: must be at least 0"),
    ("data.digits.train_subset", 1, "data.digits.train_subset = 1: must be at least 2"),
    ("data.digits.label_noise", 1.0, "data.digits.label_noise = 1.0: must be less than 1"),
    ("model.hidden_units", [0], "model.hidden_units.0 = 0: must be at least 1"),
    ("model.hidden_units", [70000], "model.hidden_units.0 = 70000: must be at most 65536"),
    ("model.cnn.filters", [], "model.cnn.filters = []: needs at least 1 item(s)"),
    ("model.cnn.kernel_size", 16, "model.cnn.kernel_size = 16: must be at most 15"),
    ("model.cnn.dense_units", -1, "model.cnn.dense_units = -1: must be at least 0"),
    ("train.learning_rate", 0.0, "train.learning_rate = 0.0: must be greater than 0"),
    ("train.learning_rate", 11.0, "train.learning_rate = 11.0: must be at most 10"),
    ("train.batch_size", 0, "train.batch_size = 0: must be at least 1"),
    ("train.epochs", 0, "train.epochs = 0: must be at least 1"),
    ("train.epochs", float("inf"), "train.epochs = inf: must be a whole number"),
    ("sweep.plain.weight_decay", -1.0, "sweep.plain.weight_decay = -1.0: must be at least 0"),
    ("sweep.plain.train_size", 1, "sweep.plain.train_size = 1: must be at least 2"),
    ("sweep.plain.label_noise", 1.5, "sweep.plain.label_noise = 1.5: must be less than 1"),
    ("grid.train_sizes", [1], "grid.train_sizes.0 = 1: must be at least 2"),
    ("grid.label_noise", [2.0], "grid.label_noise.0 = 2.0: must be less than 1"),
    ("grid.layers", [], "grid.layers = []: needs at least 1 item(s)"),
    ("grid.layers", ["all;x"], 'grid.layers.0 = "all;x": must be all, each, or a layer name'),
    ("grid.prefix", "1st", 'grid.prefix = "1st": must be a letter, then up to 15'),
]


@pytest.mark.parametrize(("key", "value", "expected"), OUT_OF_BOUNDS)
def test_every_bound_is_stated_in_the_projects_words(tmp_path: Path, key, value, expected):
    params = tiny_params()
    if key.startswith("data.") and key.split(".")[1] in ("train_subset", "label_noise"):
        params["data"].update(source="csv", csv_path="data/raw/a.csv", target_column="y")
    _set_path(params, key, value)
    message = _message_of(tmp_path, params)
    assert message.startswith(expected), message
    for pydantic_wording in ("Input should", "should be", "Value error", "pydantic"):
        assert pydantic_wording not in message, message


def _message_of(tmp_path: Path, params: dict) -> str:
    return _message(tmp_path, lambda p: p.clear() or p.update(params))


@pytest.mark.parametrize(
    ("compute", "expected"),
    [
        ({"workers": -1}, "compute.workers = -1"),
        ({"group_size": 0}, "compute.group_size = 0"),
        ({"workers": "2"}, 'compute.workers = "2": must be a whole number; remove the quotes'),
        ({"threads": 2}, "unknown key 'compute.threads'"),
    ],
)
def test_compute_settings_are_validated_though_dvc_does_not_track_them(
    tmp_path: Path, compute: dict, expected: str
):
    def edit(params: dict) -> None:
        params["compute"] = compute

    assert _message(tmp_path, edit).startswith(expected)

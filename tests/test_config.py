"""params.yaml validation: the real file loads, and each kind of mistake is named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, tiny_params, write_yaml

from pipeline.config import load_config
from pipeline.core.errors import ConfigError


def test_project_params_load_and_expand_rates():
    config = load_config(ROOT / "params.yaml")
    assert len(config.sweep) >= 6
    n_layers = config.model.n_dense_layers
    rates = {name: config.layer_rates(name) for name in config.sweep}
    assert all(len(r) == n_layers for r in rates.values())
    assert (0.0,) * n_layers in rates.values(), "the sweep needs an unregularized entry"
    assert any(len(set(r)) > 1 for r in rates.values()), "the sweep needs a layer-wise entry"


def test_single_rate_applies_to_every_layer(params_file: Path):
    config = load_config(params_file)
    assert config.layer_rates("plain") == (0.0, 0.0, 0.0)
    assert config.layer_rates("layerwise") == (0.01, 0.001, 0.0)


def _set(data: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        data = data[key]
    data[leaf] = value


INVALID = [
    ("sweep.plain.l2", -0.1, "sweep.plain.l2"),
    ("sweep.plain.l2", float("nan"), "sweep.plain.l2 = nan: an L2 rate must be a finite"),
    ("sweep.plain.l2", float("inf"), "sweep.plain.l2 = inf: an L2 rate must be a finite"),
    ("sweep.plain.l2", "0.01", "sweep.plain.l2"),
    ("sweep.layerwise.l2", [0.1, 0.1], "has 2 rates but the model has 3 Dense layers"),
    ("sweep.layerwise.l2", [0.1, -1.0, 0.0], "sweep.layerwise.l2"),
    ("model.activation", "tanhh", "model.activation"),
    ("model.hidden_units", [], "model.hidden_units = []: needs at least 1 item(s)"),
    ("train.epochs", 0, "train.epochs = 0: must be at least 1"),
    ("train.batch_size", 2.5, "train.batch_size"),
    ("train.learning_rate", True, "train.learning_rate"),
    ("data.test_fraction", 1.5, "data.test_fraction"),
    ("data.digits.label_noise", 1.0, "data.digits.label_noise = 1.0: must be less than 1"),
    ("data.source", "mnist", "data.source"),
    ("train.epoch", 3, "unknown key 'train.epoch'"),
    ("sweep", {}, "sweep"),
    ("sweep", {"bad;rm -rf": {"l2": 0.1}}, "entry name 'bad;rm -rf' is not allowed"),
    ("sweep", {"1st": {"l2": 0.1}}, "entry name '1st' is not allowed"),
    ("sweep.plain.rate", 0.1, "unknown key 'sweep.plain.rate'"),
    ("sweep.plain", None, "sweep.plain"),
    ("sweep", {"Plain": {"l2": 0.1}, "plain": {"l2": 0.0}}, "differ only in case"),
    ("train.learning_rate", float("nan"), "train.learning_rate = nan"),
    ("train.learning_rate", float("inf"), "train.learning_rate = inf"),
    ("data.val_fraction", float("nan"), "data.val_fraction = nan: must be a finite number"),
    ("data.digits.label_noise", float("-inf"), "data.digits.label_noise = -inf: must be a finite"),
    ("base.seed", -1, "base.seed = -1"),
    ("base.seed", 1.5, "base.seed = 1.5"),
    ("model.hidden_units", [16, 0], "model.hidden_units.1 = 0"),
]


@pytest.mark.parametrize(
    ("key", "value", "expected"), INVALID, ids=[f"{k}={v!r}" for k, v, _ in INVALID]
)
def test_invalid_params_are_named_in_one_line(tmp_path: Path, key: str, value, expected: str):
    params = tiny_params()
    _set(params, key, value)
    path = tmp_path / "params.yaml"
    write_yaml(path, params)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_missing_section_is_named(tmp_path: Path):
    params = tiny_params()
    del params["train"]
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match="missing key 'train'"):
        load_config(tmp_path / "params.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text("base:\n  seed: 1\n  experiment: [unclosed\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line \d+"):
        load_config(path)


def test_duplicate_entry_names_are_rejected(tmp_path: Path):
    path = tmp_path / "params.yaml"
    write_yaml(path, tiny_params())
    path.write_text(path.read_text() + "")
    text = path.read_text().replace("  plain:\n", "  plain:\n    l2: 0.5\n  plain:\n", 1)
    path.write_text(text)
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_config(path)


def test_csv_source_needs_path_and_target(tmp_path: Path):
    params = tiny_params()
    params["data"]["source"] = "csv"
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match=r"csv_path or data\.target_column"):
        load_config(tmp_path / "params.yaml")


def test_scientific_notation_without_dot_is_a_number(tmp_path: Path):
    # YAML 1.1 loaders read `1e-3` as a string; DVC (YAML 1.2) reads a number, and so do we.
    path = tmp_path / "params.yaml"
    write_yaml(path, tiny_params())
    path.write_text(path.read_text().replace("l2: 0.0\n", "l2: 1e-3\n", 1))
    assert load_config(path).layer_rates("plain") == (0.001,) * 3


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_a_file_that_is_not_a_mapping_is_named(tmp_path: Path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(path)


@pytest.mark.parametrize("csv_path", ["my.csv", "data/my.csv", "/tmp/my.csv", "data/raw/../x.csv"])
def test_csv_must_live_under_data_raw(tmp_path: Path, csv_path: str):
    params = tiny_params()
    params["data"].update(source="csv", csv_path=csv_path, target_column="y")
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match="put the CSV under data/raw/"):
        load_config(tmp_path / "params.yaml")


def test_weight_decay_defaults_to_zero_and_is_validated(tmp_path: Path):
    params = tiny_params()
    params["sweep"]["decayed"] = {"weight_decay": 0.5}
    write_yaml(tmp_path / "params.yaml", params)
    config = load_config(tmp_path / "params.yaml")
    assert config.entry("plain").weight_decay == 0.0
    assert config.entry("decayed").weight_decay == 0.5
    assert config.layer_rates("decayed") == (0.0, 0.0, 0.0)
    for bad in (-0.1, float("inf"), "0.1"):
        params["sweep"]["decayed"] = {"weight_decay": bad}
        write_yaml(tmp_path / "params.yaml", params)
        with pytest.raises(ConfigError, match=r"sweep\.decayed\.weight_decay"):
            load_config(tmp_path / "params.yaml")


@pytest.mark.parametrize("seeds", [[42], [7, 7], [-1], ["7"]])
def test_repeat_seeds_must_be_new_distinct_seeds(tmp_path: Path, seeds):
    params = tiny_params()
    params["base"].update(seed=42, repeat_seeds=seeds)
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match=r"base\.repeat_seeds"):
        load_config(tmp_path / "params.yaml")

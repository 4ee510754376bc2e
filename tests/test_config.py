"""params.yaml validation: the real file loads, and each kind of mistake is named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config, resolve_entries
from pipeline.core.errors import ConfigError
from tests.support.params import ROOT, tiny_params, write_yaml


def test_project_params_load_and_expand_rates():
    config = load_config(ROOT / "params.yaml")
    assert len(config.sweep) >= 6
    n_layers = config.model.n_dense_layers
    rates = {entry.name: entry.rates for entry in resolve_entries(config)}
    assert all(len(r) == n_layers for r in rates.values())
    assert (0.0,) * n_layers in rates.values(), "the sweep needs an unregularized entry"
    assert any(len(set(r)) > 1 for r in rates.values()), "the sweep needs a layer-wise entry"


def test_single_rate_applies_to_every_layer(params_file: Path):
    rates = {entry.name: entry.rates for entry in resolve_entries(load_config(params_file))}
    assert rates["plain"] == (0.0, 0.0, 0.0)
    assert rates["layerwise"] == (0.01, 0.001, 0.0)


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
    rates = {entry.name: entry.rates for entry in resolve_entries(load_config(path))}
    assert rates["plain"] == (0.001,) * 3


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
    entries = {entry.name: entry for entry in resolve_entries(config)}
    assert entries["plain"].weight_decay == 0.0
    assert entries["decayed"].weight_decay == 0.5
    assert entries["decayed"].rates == (0.0, 0.0, 0.0)
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


# --- the digits demo's settings and a user's own data -------------------------------------


def _own_csv(**data) -> dict:
    """The tiny params as a user sets them for a CSV: only the three data keys."""
    params = tiny_params()
    params["data"].update(source="csv", csv_path="data/raw/my.csv", target_column="y", **data)
    return params


def test_the_demos_subset_and_noise_never_reach_a_users_data(tmp_path: Path):
    write_yaml(tmp_path / "params.yaml", _own_csv())
    data = load_config(tmp_path / "params.yaml").data
    assert data.digits.train_subset == 80 and data.digits.label_noise == 0.2  # still written
    assert data.effective_train_subset is None and data.effective_label_noise == 0.0
    assert data.as_trained()["train_subset"] is None and data.as_trained()["label_noise"] == 0.0


def test_a_users_data_is_subsampled_and_noised_only_when_asked(tmp_path: Path):
    write_yaml(tmp_path / "params.yaml", _own_csv(train_subset=50, label_noise=0.1))
    data = load_config(tmp_path / "params.yaml").data
    assert (data.effective_train_subset, data.effective_label_noise) == (50, 0.1)


def test_the_default_params_record_the_demo_as_before(tmp_path: Path):
    # A model's config.json and MLflow params: the flat keys of the layout before data.digits.
    data = load_config(ROOT / "params.yaml").data
    assert list(data.as_trained()) == [
        "source", "csv_path", "target_column", "image_dir", "image_size", "color_mode",
        "npz_path", "shape", "test_fraction", "val_fraction", "train_subset", "label_noise",
        "scaling",
    ]  # fmt: skip
    assert data.as_trained()["train_subset"] == 300 and data.as_trained()["label_noise"] == 0.2


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"csv_path": "data/raw/my.csv"}, "data.csv_path is set but data.source is 'digits':"
         " set data.source: csv to use it, or data.csv_path: null"),
        ({"target_column": "species"}, "data.target_column is set but data.source is 'digits'"),
        ({"npz_path": "data/raw/a.npz"}, "set data.source: npz to use it"),
        ({"source": "csv", "csv_path": "data/raw/my.csv", "target_column": "y",
          "image_dir": "data/raw/pngs"}, "data.image_dir is set but data.source is 'csv'"),
        ({"label_noise": 0.1}, "data.label_noise applies to your own data; the digits demo's is"
         " data.digits.label_noise"),
        ({"train_subset": 100}, "the digits demo's is data.digits.train_subset"),
    ],
)  # fmt: skip
def test_settings_for_a_source_not_selected_are_one_line(tmp_path: Path, data, expected):
    params = tiny_params()
    params["data"].update(data)
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "params.yaml")
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_the_mlps_keys_are_optional_for_another_builder(tmp_path: Path):
    params = tiny_params()
    del params["model"]["hidden_units"], params["model"]["activation"]
    params["model"]["builder"] = "builders/example.py:small_convnet"
    write_yaml(tmp_path / "params.yaml", params)
    assert load_config(tmp_path / "params.yaml").model.hidden_units is None
    params["model"]["builder"] = "mlp"
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match=r"model.hidden_units is missing or null: the MLP"):
        load_config(tmp_path / "params.yaml")


# The YAML the lab and DVC read (ruamel.yaml's YAML 1.2 loader): README "params.yaml".
@pytest.mark.parametrize(
    ("written", "read"), [("1_000", 1000), ("0x10", 16), ("0o10", 8), ("1e3", 1000.0)]
)
def test_numbers_are_read_as_the_readme_documents(tmp_path: Path, written: str, read):
    path = tmp_path / "params.yaml"
    write_yaml(path, tiny_params())
    path.write_text(path.read_text().replace("epochs: 4\n", f"epochs: {written}\n", 1))
    if isinstance(read, float):
        with pytest.raises(ConfigError, match=r"train.epochs = 1000.0: must be a whole number"):
            load_config(path)
    else:
        assert load_config(path).train.epochs == read

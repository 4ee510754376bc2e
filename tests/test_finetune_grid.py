"""`grid.l2_sp`: fine-tuning's grid of rates toward the start, expanded into named entries
beside `grid.rates`' (no Keras: the start model's layers come as models/sweep.json gives them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.config.entries import ModelLayers, resolve_entries
from pipeline.core.errors import ConfigError
from tests.support.params import tiny_params, write_yaml

START = "pretrained/source.keras"  # load_config checks where it is, train that it loads
# A start model's layers: conv_1 and dense have a start, the output is a new head.
LAYERS = ModelLayers(("conv_1", "dense", "output"), ("conv_1", "dense"),
                     ("conv_1", "dense", "output"), True)  # fmt: skip


def _config(tmp_path: Path, start: str | None = START, **grid_section):
    params = tiny_params()
    params["model"]["start_from"] = start
    params["grid"] = grid_section
    write_yaml(tmp_path / "params.yaml", params)
    return load_config(tmp_path / "params.yaml")


def test_grid_l2_sp_expands_into_named_entries_held_close_to_the_start(tmp_path):
    config = _config(tmp_path, rates=[0, 0.01], l2_sp=[0, 0.001, 0.1], layers=["all", "conv_1"])
    assert [n for n in config.sweep if n.startswith("grid")] == [
        "grid_0_all", "grid_1e_2_all", "grid_1e_2_conv_1",
        # l2_sp 0 is grid_0_all, the unregularized fine-tuned model: not a second entry.
        "grid_sp_1e_3_all", "grid_sp_1e_3_conv_1", "grid_sp_1e_1_all", "grid_sp_1e_1_conv_1",
    ]  # fmt: skip
    assert config.sweep["grid_sp_1e_1_all"].l2_sp == 0.1
    assert config.sweep["grid_sp_1e_1_all"].l2 == 0.0
    assert config.sweep["grid_sp_1e_3_conv_1"].l2_sp == {"conv_1": 0.001}
    specs = {e.name: e for e in resolve_entries(config, LAYERS)}
    assert specs["grid_sp_1e_1_all"].tuning.sp_rates == (("conv_1", 0.1), ("dense", 0.1))
    assert specs["grid_sp_1e_3_conv_1"].sp_rates == (0.001, 0.0)
    assert specs["grid_sp_1e_1_all"].rates == (0.0, 0.0, 0.0)
    assert not specs["grid_sp_1e_1_all"].is_pure_l2 and specs["grid_0_all"].tuning.from_start
    # Without grid.rates' 0, l2_sp's 0 is the entry of the unregularized fine-tuned model.
    alone = _config(tmp_path, l2_sp=[0, 0.1])
    assert [n for n in alone.sweep if n.startswith("grid")] == ["grid_sp_0_all", "grid_sp_1e_1_all"]


def test_a_grid_l2_sp_on_the_new_head_is_refused_when_the_layers_are_known(tmp_path):
    config = _config(tmp_path, l2_sp=[0.1], layers=["output"])
    with pytest.raises(ConfigError, match="layer 'output' is a new head"):
        resolve_entries(config, LAYERS)


@pytest.mark.parametrize(
    ("start", "section", "message"),
    [
        (None, {"l2_sp": [0.01]}, "grid.l2_sp holds a model close to its starting weights, and"
         " there is no start model; set model.start_from"),
        (START, {"l2_sp": [0.01], "layers": ["each"]}, "grid.layers has each, but the layers of"
         f" {START} are known only once Keras has the model; list their names instead"),
        (START, {"l2_sp": [-0.1]}, "grid.l2_sp must be a list of finite numbers >= 0"),
    ],
)  # fmt: skip
def test_a_bad_grid_l2_sp_is_one_line_naming_the_key_and_the_fix(tmp_path, start, section, message):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, start, **section)
    assert message in str(error.value)
    assert "\n" not in str(error.value)

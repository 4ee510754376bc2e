"""Grids: named, stable entries beside the hand-written ones, refused when too large for memory,
and changed from the command line with `dvc exp run -S`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pipeline.config import grid, load_config, memory
from pipeline.config.entries import resolve_entries
from pipeline.core.errors import ConfigError
from tests.support.params import tiny_params, write_yaml
from tests.support.project import Project


def _config(tmp_path: Path, **grid_section):
    params = tiny_params()
    params["grid"] = grid_section
    write_yaml(tmp_path / "params.yaml", params)
    return load_config(tmp_path / "params.yaml")


def test_a_grid_expands_into_readable_stable_names_after_the_hand_written_entries(tmp_path):
    config = _config(tmp_path, rates=[0, 0.001, 0.01], layers=["all", "each"])
    assert set(list(config.sweep)[:2]) == {"plain", "layerwise"}
    assert list(config.sweep)[2:] == [
        "grid_0_all",  # rate 0 is one model, whatever the layers
        "grid_1e_3_all", "grid_1e_3_hidden_1", "grid_1e_3_hidden_2", "grid_1e_3_output",
        "grid_1e_2_all", "grid_1e_2_hidden_1", "grid_1e_2_hidden_2", "grid_1e_2_output",
    ]  # fmt: skip
    assert config.sweep["grid_1e_2_all"].l2 == 0.01
    assert config.sweep["grid_1e_2_hidden_2"].l2 == {"hidden_2": 0.01}
    (layer_alone,) = [e for e in resolve_entries(config) if e.name == "grid_1e_2_hidden_2"]
    assert layer_alone.layer_rates == (("hidden_1", 0.0), ("hidden_2", 0.01), ("output", 0.0))
    # The same grid gives the same names and entries.
    assert load_config(tmp_path / "params.yaml").sweep == config.sweep


def test_each_layer_of_the_convnet_gets_its_entries_and_a_users_builder_names_them(tmp_path):
    params = tiny_params()
    params["model"].update(builder="cnn", cnn={"filters": [4, 8], "dense_units": 16})
    params["grid"] = {"rates": [0.01], "layers": ["each"]}
    write_yaml(tmp_path / "params.yaml", params)
    config = load_config(tmp_path / "params.yaml")
    assert [n for n in config.sweep if n.startswith("grid_")] == [
        "grid_1e_2_conv_1", "grid_1e_2_conv_2", "grid_1e_2_dense", "grid_1e_2_output",
    ]  # fmt: skip
    # The names are the ones builders.cnn gives (tests/test_own_models.py builds it).
    assert grid.layer_names(config) == ("conv_1", "conv_2", "dense", "output")

    # A builder of the user's tells its layers only when built: `each` is refused with the
    # fix, names are taken as given (and `train` checks them against the built model).
    params["model"]["builder"] = "builders/example.py:small_convnet"
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match="list their names instead"):
        load_config(tmp_path / "params.yaml")
    params["grid"]["layers"] = ["all", "conv_stem"]
    write_yaml(tmp_path / "params.yaml", params)
    config = load_config(tmp_path / "params.yaml")
    assert config.sweep["grid_1e_2_conv_stem"].l2 == {"conv_stem": 0.01}


def test_sizes_and_label_noise_name_their_entries(tmp_path):
    config = _config(tmp_path, rates=[0.0046], train_sizes=[None, 200], label_noise=[None, 0.0])
    assert list(config.sweep)[2:] == [
        "grid_4p6e_3_all", "grid_4p6e_3_all_noise0", "grid_4p6e_3_all_n200",
        "grid_4p6e_3_all_n200_noise0",
    ]  # fmt: skip
    assert config.sweep["grid_4p6e_3_all_n200_noise0"].train_size == 200
    assert config.sweep["grid_4p6e_3_all_n200_noise0"].label_noise == 0.0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"rates": [0.01], "layers": ["hidden_9"]}, "grid.layers has 'hidden_9'"),
        ({"rates": [-1.0]}, "grid.rates must be a list of finite numbers"),
        ({"rates": [0.01], "prefix": "g-1"}, "grid.prefix"),
    ],
)
def test_a_bad_grid_is_one_line_naming_the_key(tmp_path, section, message):
    with pytest.raises(ConfigError, match=message) as error:
        _config(tmp_path, **section)
    assert "\n" not in str(error.value)


def test_a_grid_name_that_collides_with_an_entry_is_refused(tmp_path):
    params = tiny_params()
    params["sweep"]["grid_1e_2_all"] = {"l2": 0.5}
    params["grid"] = {"rates": [0.01]}
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match="grid entry 'grid_1e_2_all' has the name"):
        load_config(tmp_path / "params.yaml")


def test_the_memory_estimate_counts_weights_adam_slots_and_activations(tmp_path):
    config = _config(tmp_path, rates=[0.01], layers=["each"])  # 2 + 3 entries, 1 seed
    params = 64 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    per_tower = (params * 4 + 16 * (16 + 16 + 10) * 3) * 4
    assert memory.estimate_sweep_bytes(config, 64, 10) == 5 * per_tower
    assert memory.check_memory(config, 64, 10, available=10**9) == 5 * per_tower
    with pytest.raises(ConfigError, match=r"need about .* MB .* the limit is 0.04 MB"):
        memory.check_memory(config, 64, 10, available=80_000)
    # choose.folds: 3 trains every entry 3 times more.
    folded = config.model_copy(update={"choose": config.choose.model_copy(update={"folds": 3})})
    assert memory.estimate_sweep_bytes(folded, 64, 10) == 5 * 4 * per_tower
    with pytest.raises(ConfigError, match=r"20 models \(5 entries x 1 seeds x \(1 \+ 3 folds\)\)"):
        memory.check_memory(folded, 64, 10, available=80_000)


@pytest.mark.slow  # a stage process, though it stops at once
def test_prepare_refuses_a_grid_too_large_for_memory_before_any_training(tmp_path):
    import subprocess

    params = tiny_params()
    params["model"]["hidden_units"] = [65536, 65536]  # 4.3e9 weights per tower
    params["grid"] = {"rates": [0.001, 0.01, 0.1], "layers": ["all", "each"]}
    write_yaml(tmp_path / "params.yaml", params)
    command = [sys.executable, "-m", "pipeline.prepare", "--params", str(tmp_path / "params.yaml")]
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "prepared")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "the sweep's 14 models" in lines[0] and "GB" in lines[0] and "limit" in lines[0]
    assert not (tmp_path / "prepared").exists()


@pytest.mark.slow
def test_dvc_exp_run_sets_the_grid_and_dvc_exp_show_lists_its_entries(project: Project):
    """A layer grid from the command line, in place of the hand-written entries: its
    entries' metrics files are what `dvc exp show` lists."""
    project.dvc(
        "exp", "run", "-n", "layers",
        # Hydra's syntax: `sweep={}` would merge; `~` drops the key and `+` sets it anew.
        "-S", "~sweep", "-S", "+sweep={}",
        "-S", "grid.rates=[0,0.01,0.1]", "-S", "grid.layers=[all,each]",
    )  # fmt: skip
    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    metrics = {
        path
        for rev in shown
        for exp in rev.get("experiments") or []
        for run in exp["revs"]
        for path in ((run.get("data") or {}).get("metrics") or {})
    }
    expected = {"grid_0_all", "grid_1e_2_all", "grid_1e_2_hidden_1", "grid_1e_1_output"}
    assert {f"metrics/{name}.json" for name in expected} <= metrics
    assert not any(path in metrics for path in ("metrics/plain.json", "metrics/layerwise.json"))
    # Part 2: the report's heatmap of validation error, layers x rates, and its verdict.
    plots = project.root / "reports" / "plots"
    heatmap = (plots / "layer_heatmap.csv").read_text().splitlines()
    assert heatmap[0] == "layer,l2_rate,log10_rate,val_error"
    assert len(heatmap) == 1 + 4 * 3  # hidden_1, hidden_2, output, all x 0, 0.01, 0.1
    assert (plots / "layer_heatmap.png").is_file()
    choosing = (project.root / "reports" / "choosing.md").read_text()
    assert "L2 matters most" in choosing
    # Part 4: the next rates, only where they could change the decision. After 4 epochs of
    # the tiny params rate 0 cannot be told apart from the chosen entry: L2 makes no
    # measurable difference, so no bracket is proposed (the commands: tests/test_choosing.py).
    assert "L2 makes no measurable difference here: rate 0 (grid_0_all)" in choosing
    assert "so no bracket is proposed." in choosing
    assert "dvc exp run --queue" not in choosing
    shown = project.dvc("plots", "show", "--json")
    assert "layer_heatmap.csv" in shown.stdout

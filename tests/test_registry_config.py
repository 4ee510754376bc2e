"""params.yaml's `registry:` section: names MLflow's registry accepts, one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.core.errors import ConfigError
from tests.support.params import ROOT, tiny_params, write_yaml


def _load(tmp_path: Path, registry: dict | None):
    params = tiny_params()
    if registry is None:
        params.pop("registry", None)
    else:
        params["registry"] = registry
    path = tmp_path / "params.yaml"
    write_yaml(path, params)
    return load_config(path), path


def test_the_projects_params_name_the_defaults():
    registry = load_config(ROOT / "params.yaml").registry
    assert (registry.name, registry.alias) == ("l2-lab", "chosen")


def test_a_missing_section_takes_the_defaults(tmp_path: Path):
    config, _ = _load(tmp_path, None)
    assert (config.registry.name, config.registry.alias) == ("l2-lab", "chosen")


def test_names_mlflow_accepts_are_kept(tmp_path: Path):
    config, _ = _load(tmp_path, {"name": "digits.mlp-v2_x", "alias": "champion-2"})
    assert (config.registry.name, config.registry.alias) == ("digits.mlp-v2_x", "champion-2")


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ({"name": "a/b"}, 'registry.name = "a/b": must be letters, digits, _, - or .'),
        ({"name": "lab:1"}, 'registry.name = "lab:1": must be letters, digits'),
        ({"name": "lab@chosen"}, 'registry.name = "lab@chosen": must be letters, digits'),
        ({"name": ".."}, 'registry.name = "..": must be letters, digits, _, - or ., starting'),
        ({"name": ""}, 'registry.name = "": must be letters, digits'),
        ({"name": "x" * 257}, "registry.name = \"" + "x" * 257 + '": must be letters'),
        ({"name": 3}, "registry.name = 3: must be text"),
        ({"alias": "my alias"}, 'registry.alias = "my alias": must be letters, digits, _ or -'),
        ({"alias": ""}, 'registry.alias = "": must be letters, digits, _ or -'),
        ({"alias": "latest"}, 'registry.alias = "latest": is reserved by MLflow'),
        ({"alias": "V2"}, 'registry.alias = "V2": is reserved by MLflow (latest, v<number>)'),
        ({"alias": None}, "registry.alias = null: must be text (an empty value is `null`"),
        ({"stage": "prod"}, "unknown key 'registry.stage'"),
    ],
)
def test_a_name_mlflow_would_refuse_is_refused_in_one_line(tmp_path: Path, registry, expected):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, registry)
    message = str(caught.value)
    assert "\n" not in message
    path = tmp_path / "params.yaml"
    assert message.removeprefix(f"{path}: ").startswith(expected), message
    for pydantic_wording in ("Input should", "should be", "Value error", "pydantic"):
        assert pydantic_wording not in message, message


def test_mlflow_itself_accepts_every_name_the_schema_accepts(tmp_path: Path):
    """The schema is a subset of MLflow's own rules, checked by MLflow's validators."""
    from mlflow.utils.validation import (
        _validate_model_alias_name,
        _validate_model_alias_name_reserved,
        _validate_model_name,
    )

    for name, alias in (("l2-lab", "chosen"), ("a.b_c-1", "x_Y-2"), ("9" * 256, "a" * 255)):
        config, _ = _load(tmp_path, {"name": name, "alias": alias})
        _validate_model_name(config.registry.name)
        _validate_model_alias_name(config.registry.alias)
        _validate_model_alias_name_reserved(config.registry.alias)

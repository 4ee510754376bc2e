"""The `chosen` stage's contract without training: when nothing could be chosen the folder
says so and `register` registers nothing; the key follows the model's bytes, the
preparation's and every decision fact, and nothing else."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pipeline import chosen, register
from pipeline.core import contracts
from tests.support.params import tiny_params, write_yaml


def test_nothing_chosen_is_said_in_the_folder_and_registers_nothing(
    tmp_path: Path, monkeypatch, caplog
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "params.yaml"
    write_yaml(params, tiny_params())
    contracts.write_decision(tmp_path / "refit", None)  # every entry diverged
    out = tmp_path / "chosen"

    chosen.package_chosen(params, tmp_path / "prepared", tmp_path / "models", tmp_path / "refit",
                          out)  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == [contracts.CHOSEN_FILE]
    said = json.loads((out / contracts.CHOSEN_FILE).read_text())
    assert said == {"entry": None, "reason": chosen.NOTHING_CHOSEN}

    with caplog.at_level(logging.INFO):
        register.register(params, out, tmp_path / "models")
    assert f"{chosen.NOTHING_CHOSEN}: nothing to register" in caplog.text
    assert not (tmp_path / "mlflow.db").exists()  # no store opened, nothing registered


FACTS = {"entry": "plain", "rule": "min", "figure_value": 0.25, "l2_rates": {"output": 0.0}}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    keras_file, preparation = tmp_path / "model.keras", tmp_path / "preparation.json"
    keras_file.write_bytes(b"weights")
    preparation.write_text('{"scaling": "minmax"}')
    return keras_file, preparation


def test_the_key_follows_the_model_the_preparation_and_every_fact(inputs):
    keras_file, preparation = inputs
    key = chosen.chosen_key(keras_file, preparation, FACTS)
    assert chosen.chosen_key(keras_file, preparation, dict(reversed(FACTS.items()))) == key
    moved = {
        chosen.chosen_key(keras_file, preparation, {**FACTS, name: "other"}) for name in FACTS
    }
    assert len(moved) == len(FACTS) and key not in moved
    keras_file.write_bytes(b"weights!")
    assert chosen.chosen_key(keras_file, preparation, FACTS) not in {key, *moved}
    keras_file.write_bytes(b"weights")
    preparation.write_text('{"scaling": "standard"}')
    assert chosen.chosen_key(keras_file, preparation, FACTS) not in {key, *moved}


def test_the_version_tags_are_the_facts_as_text(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "try-it")
    tags = register.version_tags({**FACTS, "key": "k"}, tmp_path)  # no git here: "unknown"
    assert tags == {
        "entry": "plain", "rule": "min", "figure_value": "0.25", "l2_rates": '{"output": 0.0}',
        "git_commit": "unknown", "dvc_exp_name": "try-it",
    }  # fmt: skip

"""The project's own params.yaml, shrunk so real Keras/DVC/MLflow runs take seconds."""

from __future__ import annotations

import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tiny_params() -> dict:
    """The project's params.yaml with a small model, few epochs and a two-entry sweep."""
    params = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
    params["data"]["digits"].update(train_subset=80, label_noise=0.2)
    params["model"]["hidden_units"] = [16, 16]
    params["train"].update(epochs=4, batch_size=16)
    params["sweep"] = {"plain": {"l2": 0.0}, "layerwise": {"l2": [0.01, 0.001, 0.0]}}
    return params


def write_yaml(path: Path, data: dict) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with path.open("w") as handle:
        yaml.dump(data, handle)

"""A fine-tuned model's key moves with everything its bytes depend on beyond the plain sweep's:
the start file's content, `model.new_head`, the entry's `freeze`, its `l2_sp` rates and its
`start_from: null`; and not with the entry's name (tests/test_model_key.py checks the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import BuilderRef, load_config, resolve_entries
from pipeline.config.entries import ModelLayers
from pipeline.model_store.key import Fingerprint, digest_of, ingredients
from tests.support.params import write_yaml
from tests.support.start_models import START_FILE, fine_tuning_params

pytestmark = pytest.mark.usefixtures("tensorflow")  # the environment's versions

# The start model's layers as train reads them (tests/support/start_models.py's network): the
# key needs them, not Keras.
LAYERS = ModelLayers(
    regularizable=("hidden_1", "hidden_2", "output"),
    with_start=("hidden_1", "hidden_2", "output"),
    weighted=("hidden_1", "bn", "hidden_2", "output"),
    from_file=True,
)


@pytest.fixture
def key_of(tmp_path: Path):
    """params, entry -> the entry's key at the base seed, with a start file of fixed bytes."""
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    (prepared / "train.npz").write_bytes(b"rows")
    (tmp_path / "pretrained").mkdir()
    (tmp_path / START_FILE).write_bytes(b"the start model's bytes")

    def key(params: dict, entry: str, layers: ModelLayers = LAYERS) -> str:
        path = tmp_path / "params.yaml"
        write_yaml(path, params)
        config = load_config(path)
        spec = next(e for e in resolve_entries(config, layers) if e.name == entry)
        fingerprint = Fingerprint.of(config, prepared, BuilderRef.of_params(config.model, path))
        return digest_of(ingredients(fingerprint, config, spec, config.base.seed, None))

    return tmp_path, key


def test_each_fine_tuning_input_moves_the_key(key_of):
    root, key = key_of
    sweep = {"held": {"l2_sp": 0.01}, "same": {"l2_sp": 0.01}}
    base = key(fine_tuning_params(sweep), "held")
    assert key(fine_tuning_params(sweep), "same") == base  # the name is not in it
    moved = {
        "l2_sp": key(fine_tuning_params({"held": {"l2_sp": 0.02}}), "held"),
        "l2_sp of one layer": key(
            fine_tuning_params({"held": {"l2_sp": [0.01, 0.01, 0.0]}}), "held"
        ),
        "freeze": key(fine_tuning_params({"held": {"l2_sp": 0.01, "freeze": ["bn"]}}), "held"),
        "new_head": key(fine_tuning_params(sweep, new_head=True), "held"),
        "start_from: null": key(fine_tuning_params({"held": {"start_from": None}}), "held"),
        "no l2_sp": key(fine_tuning_params({"held": {}}), "held"),
    }
    (root / START_FILE).write_bytes(b"another start model's bytes")
    moved["the start file's content"] = key(fine_tuning_params(sweep), "held")
    assert base not in moved.values(), [name for name, k in moved.items() if k == base]
    assert len(set(moved.values())) == len(moved)


def test_a_scratch_entry_still_depends_on_the_start_file(key_of):
    """From scratch, the architecture is still the file's."""
    root, key = key_of
    params = fine_tuning_params({"scratch": {"start_from": None}})
    before = key(params, "scratch")
    (root / START_FILE).write_bytes(b"another start model's bytes")
    assert key(params, "scratch") != before

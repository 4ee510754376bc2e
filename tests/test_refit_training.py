"""The refit's model trains as a group of one through `compute.run_groups`, the path `train`
takes: its weights equal the model trained alone on the refit's rows (every pooled training
and validation row, its labels noised), max |difference| == 0, for Adam with and without L2
and for AdamW; in a worker process too."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import compute
from pipeline.compute.work import build_group_models
from pipeline.config import BuilderRef, load_config, resolve_entries
from pipeline.core import contracts
from pipeline.core.task import CLASSIFICATION_TASK
from pipeline.datasets import folds
from pipeline.prepare import prepare
from tests.support.params import tiny_params, write_yaml
from tests.support.training import fit_alone

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refit")
    params = tiny_params()
    params["choose"]["folds"] = 2
    params["train"].update(epochs=3, learning_rate=0.01)  # fit_alone's rate and batch size
    params["sweep"] = {
        "layerwise": {"l2": [0.01, 0.001, 0.0]},
        "decay": {"l2": 0.0, "weight_decay": 0.5},
    }
    write_yaml(folder / "params.yaml", params)
    prepare(folder / "params.yaml", folder / "prepared")
    return folder, load_config(folder / "params.yaml")


@pytest.fixture(scope="module")
def weights_alone(tensorflow, prepared) -> dict[str, list]:
    """Each entry's model trained alone on the pooled rows: the same for every placement."""
    from pipeline.modeling import build_tower

    folder, config = prepared
    meta = contracts.read_meta(folder / "prepared")
    pool = folds.read_cv_pool(folder / "prepared")
    rows = folds.refit_set(pool, meta.n_classes, config.data.effective_label_noise, 42)
    builder = BuilderRef.of(config.model, folder)
    found = {}
    for entry in resolve_entries(config):
        rates = dict(entry.layer_rates)
        alone = build_tower(
            builder,
            meta.input_shape,
            meta.n_classes,
            rates,
            seed=42,
            name="a",
            task=CLASSIFICATION_TASK,
        )
        splits = {"train": rows, "val": rows}
        epochs = config.train.epochs
        fit_alone(
            alone, splits, entry=entry.name, seed=42, epochs=epochs, weight_decay=entry.weight_decay
        )
        found[entry.name] = alone.get_weights()
    return found


@pytest.mark.parametrize("workers", [0, 1])
def test_the_refit_is_the_model_trained_alone_on_the_pooled_rows(prepared, weights_alone, workers):
    folder, config = prepared
    meta = contracts.read_meta(folder / "prepared")
    compute_config = config.compute.model_copy(update={"workers": workers})
    for entry in resolve_entries(config):
        builder = BuilderRef.of(config.model, folder)
        task = compute.refit_group(config, entry, meta, folder / "prepared", builder)
        (model,) = build_group_models(task)
        compute.run_group_into(task, compute_config, lambda *_: None, {model.name: model})
        for x, y in zip(model.get_weights(), weights_alone[entry.name], strict=True):
            assert np.array_equal(x, y), entry.name

"""What `train` writes about each model's data, read back from the files and MLflow runs it
leaves: the subset and label-noise share that applied to that model, not `data:` as typed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core import contracts
from tests.support.params import tiny_params, write_yaml

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")


def _prepare_and_train(folder: Path, params: dict, monkeypatch: pytest.MonkeyPatch):
    """`prepare` and `train` of `params` in `folder`, with the store there; the model runs'
    params by entry, seed and fold."""
    from mlflow.tracking import MlflowClient

    from pipeline.prepare import prepare
    from pipeline.train import train

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    write_yaml(folder / "params.yaml", params)
    prepare(folder / "params.yaml", folder / "prepared")
    train(folder / "params.yaml", folder / "prepared", folder / "models")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(params["base"]["experiment"])
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    return {
        (r.data.tags["entry"], int(r.data.tags["seed"]), r.data.tags.get("fold")): r.data.params
        for r in runs
        if r.data.tags.get("sweep") != "parent"
    }


def _config(folder: Path, entry: str, seed: int | None = None, fold: int | None = None) -> dict:
    path = contracts.model_dir(folder / "models", entry, seed, fold) / contracts.CONFIG_FILE
    return json.loads(path.read_text())


def test_each_model_records_the_subset_and_noise_it_was_trained_with(tmp_path, monkeypatch):
    params = tiny_params()  # the demo: 80 training rows, 20% of their labels flipped
    params["train"]["epochs"] = 1
    params["base"]["repeat_seeds"] = [43]
    params["sweep"] = {"plain": {"l2": 0.0}, "small": {"l2": 0.0, "train_size": 40,
                                                        "label_noise": 0.1}}  # fmt: skip
    logged = _prepare_and_train(tmp_path, params, monkeypatch)
    seed = params["base"]["seed"]

    plain = _config(tmp_path, "plain")["data"]
    assert (plain["train_subset"], plain["label_noise"], plain["train_rows"]) == (80, 0.2, 80)
    assert "digits" not in plain and plain["training_set"] == "data: training split"
    repeat = _config(tmp_path, "plain", seed=43)
    assert repeat["seed"] == 43 and repeat["data"] == plain
    for config in (_config(tmp_path, "small"), _config(tmp_path, "small", seed=43)):
        small = config["data"]  # a pool entry's own size and share
        assert (small["train_subset"], small["label_noise"], small["train_rows"]) == (40, 0.1, 40)
        assert small["training_set"] == "pool[:40], noise 0.1"

    # The runs carry the same values, flattened.
    for run_seed in (seed, 43):
        assert logged[("plain", run_seed, None)]["data.train_subset"] == "80"
        assert logged[("plain", run_seed, None)]["data.label_noise"] == "0.2"
        assert logged[("small", run_seed, None)]["data.train_subset"] == "40"
        assert logged[("small", run_seed, None)]["data.label_noise"] == "0.1"
    assert not any(key.startswith("data.digits") for run in logged.values() for key in run)


def test_a_users_csv_and_its_folds_record_their_own_settings(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=list("abc"))
    frame["kind"] = np.where(frame["a"] > 0, "p", "q")
    (tmp_path / "data" / "raw").mkdir(parents=True)
    frame.to_csv(tmp_path / "data" / "raw" / "mine.csv", index=False)
    params = tiny_params()  # the demo's subset and noise stay in data.digits, unused
    params["data"].update(
        source="csv", csv_path="data/raw/mine.csv", target_column="kind", label_noise=0.1
    )
    params["train"]["epochs"] = 1
    params["choose"]["folds"] = 2
    params["sweep"] = {"plain": {"l2": 0.0}}
    logged = _prepare_and_train(tmp_path, params, monkeypatch)
    seed = params["base"]["seed"]
    meta = contracts.read_meta(tmp_path / "prepared")

    data = _config(tmp_path, "plain")["data"]
    assert (data["source"], data["train_subset"], data["label_noise"]) == ("csv", None, 0.1)
    assert data["train_rows"] == meta.rows["train"] and "digits" not in data
    fold_rows = []
    for fold in (0, 1):
        config = _config(tmp_path, "plain", fold=fold)
        # A fold's model trains on the other fold of the pooled rows, noised at data's share.
        assert config["fold"] == fold and config["data"]["label_noise"] == 0.1
        assert config["data"]["training_set"].startswith(f"fold {fold + 1} of 2")
        fold_rows.append(config["data"]["train_rows"])
        run = logged[("plain", seed, str(fold))]
        assert run["data.train_rows"] == str(fold_rows[-1]) and run["fold"] == str(fold)
    assert sum(fold_rows) == meta.rows["train"] + meta.rows["val"]
    assert abs(fold_rows[0] - fold_rows[1]) <= 1
    run = logged[("plain", seed, None)]
    assert run["data.source"] == "csv" and run["data.label_noise"] == "0.1"
    assert not any(key.startswith("data.digits") for run in logged.values() for key in run)

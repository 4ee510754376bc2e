"""Training helpers on the tiny params: prepared splits, one model fitted alone, towers fitted
together, and the compute tests' sweep of groups (shared by the local-worker and Ray tests).

Keras is imported inside the functions: call them from tests that use the `tensorflow`
fixture, so TensorFlow starts once, set up by `init_tensorflow`."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from tests.support.params import tiny_params, write_yaml


def prepared_splits(folder: Path, **data_settings) -> dict:
    """The tiny params' splits (with `data_settings` applied), prepared under `folder`."""
    from pipeline.datasets import prepared
    from pipeline.prepare import prepare

    params = tiny_params()
    params["data"].update(data_settings)
    write_yaml(folder / "params.yaml", params)
    prepare(folder / "params.yaml", folder / "prepared")
    return {name: prepared.read_split(folder / "prepared", name) for name in prepared.SPLITS}


def fit_alone(model, splits: dict, *, entry: str, seed: int, epochs: int, weight_decay=0.0):
    """One model trained as a process of its own trains it (`reference.train_alone`,
    learning rate 0.01, batch 16, as the tower tests' fused runs), a classifier; its
    per-epoch metrics."""
    from pipeline.config.schema import TrainConfig
    from pipeline.core.task import CLASSIFICATION_TASK
    from tests.support.reference import train_alone

    history: list[dict[str, float]] = []
    train_alone(
        model,
        splits["train"],
        splits["val"],
        TrainConfig(learning_rate=0.01, batch_size=16, epochs=epochs),
        seed=seed,
        entry=entry,
        weight_decay=weight_decay,
        sinks=[lambda epoch, metrics: history.append(metrics)],
        task=CLASSIFICATION_TASK,
    )
    return history


def fit_fused(inputs: list, splits: dict, *, epochs: int, sinks=()):
    """`towers.fit_towers` of `inputs` with `fit_alone`'s settings and classification's
    objective; returns its outcome."""
    from pipeline.config.schema import TrainConfig
    from pipeline.modeling.objective import CLASSIFIER
    from pipeline.modeling.towers import fit_towers

    settings = TrainConfig(learning_rate=0.01, batch_size=16, epochs=epochs)
    return fit_towers(
        inputs, splits["train"], splits["val"], settings, sinks=list(sinks), objective=CLASSIFIER
    )


# --- the compute tests' sweep: where its groups train changes no bit -----------------------

COMPUTE_SEED = 42
COMPUTE_EPOCHS = 25  # long enough that a worker is still mid-group when a test kills it
COMPUTE_RATES = ("hidden_1", "hidden_2", "output")
# name, rates, weight decay, seed, training set: Adam and AdamW, per-layer rates, extra
# seeds, and a pool subset with its own label noise (a training set of its own).
COMPUTE_SWEEP = [
    ("plain", (0.0, 0.0, 0.0), 0.0, 7, None),
    ("layerwise", (0.01, 0.001, 0.0), 0.0, 7, None),
    ("decay", (0.0, 0.0, 0.0), 0.5, 7, None),
    ("both", (0.003, 0.003, 0.003), 0.2, 7, None),
    ("layerwise-seed8", (0.01, 0.001, 0.0), 0.0, 8, None),
    ("decay-seed9", (0.0, 0.0, 0.0), 0.5, 9, None),
    ("small", (0.0, 0.0, 0.0), 0.0, 7, (60, 0.1)),
    ("small_l2", (0.01, 0.01, 0.01), 0.0, 7, (60, 0.1)),
]


def compute_recipe(folder: Path):
    """The `Recipe` of the compute sweep, on the tiny params' splits prepared under `folder`."""
    from pipeline.compute import Recipe
    from pipeline.config import BuilderRef, ModelConfig
    from pipeline.config.schema import TrainConfig
    from pipeline.core import contracts

    prepared_splits(folder)
    meta = contracts.read_meta(folder / "prepared")
    return Recipe(
        builder=BuilderRef(ModelConfig(hidden_units=[16, 16], activation="tanh")),
        input_shape=tuple(meta.input_shape),
        n_classes=meta.n_classes,
        prepared_dir=folder / "prepared",
        base_seed=COMPUTE_SEED,
        train=TrainConfig(learning_rate=0.01, batch_size=16, epochs=COMPUTE_EPOCHS),
        task=meta.task,
    )


def compute_towers() -> list:
    """The compute sweep as (ModelTask, training set) pairs, as `cut_groups` takes them."""
    from pipeline.compute import ModelTask

    return [
        (ModelTask(n, tuple(zip(COMPUTE_RATES, r, strict=True)), s, d), key)
        for n, r, d, s, key in COMPUTE_SWEEP
    ]


def weights_of(outcome) -> dict[str, list[np.ndarray]]:
    assert outcome.failures == []
    return {name: w for result in outcome.results for name, w in result.weights.items()}


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(
        float(np.max(np.abs(x - y))) for name in a for x, y in zip(a[name], b[name], strict=True)
    )


# --- a tiny regression: float targets, standardised as prepare standardises them ----------

REGRESSION_ROWS = {"train": 120, "val": 40, "test": 40}


def regression_splits(seed: int = 0, n_features: int = 8) -> tuple[dict, float]:
    """Splits of y = x·w + noise with the target standardised by the training rows' mean and
    population std (float32 labels (rows,), as `prepared.read_split` returns them); and that
    std, which turns a standardised RMSE into the target's units."""
    from pipeline.datasets.prepared import Split

    rng = np.random.default_rng(seed)
    n_rows = sum(REGRESSION_ROWS.values())
    features = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    target = 50.0 + 12.0 * (features @ rng.normal(size=n_features)) + rng.normal(0, 4, n_rows)
    bounds = np.cumsum([0, *REGRESSION_ROWS.values()])
    pairs = zip(REGRESSION_ROWS, itertools.pairwise(bounds), strict=True)
    rows = {name: slice(int(a), int(b)) for name, (a, b) in pairs}
    mean, std = target[rows["train"]].mean(), target[rows["train"]].std(ddof=0)
    splits = {
        name: Split(features[r], ((target[r] - mean) / std).astype(np.float32))
        for name, r in rows.items()
    }
    return splits, float(std)


def write_regression_prepared(folder: Path, seed: int = 0) -> Path:
    """`regression_splits` as a prepared folder (splits, the CV pool of training and
    validation rows, meta.json with the task and the target's statistics), as the train and
    refit stages read one."""
    from pipeline.core import contracts
    from pipeline.datasets import folds, prepared

    splits, std = regression_splits(seed)
    folder.mkdir(parents=True)
    prepared.write_splits(folder, splits, np.zeros(REGRESSION_ROWS["train"], dtype=bool))
    pooled = [splits["train"], splits["val"]]
    folds.write_cv_pool(
        folder,
        prepared.Split(np.concatenate([s.features for s in pooled]),
                       np.concatenate([s.labels for s in pooled])),
    )  # fmt: skip
    n_features = splits["train"].features.shape[1]
    meta = contracts.PreparedMeta(
        source="csv",
        class_names=(),
        n_features=n_features,
        rows=dict(REGRESSION_ROWS),
        train_labels_flipped=0,
        input_shape=(n_features,),
        task="regression",
        target_mean=50.0,
        target_std=std,
    )
    contracts.write_meta(folder, meta)
    return folder

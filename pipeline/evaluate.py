"""Stage `evaluate`: final train/val/test metrics of every model of the sweep, in one process.

The only stage that reads the test split. Per entry it writes `<metrics>/<entry>.json`, the
DVC metrics file with the figures people compare across experiments (and `<name>_mean`,
`<name>_std`, `n_seeds` over the seeds with `base.repeat_seeds`), and
`<details>/<entry>.json` with every figure per seed (per layer, tanh shares), and
`<details>/held_out.npz` with each entry's predicted class per validation row, for the
report's paired tests. With `choose.folds`, each fold's model is scored on its held-out fold:
`cv_error_mean` and `cv_error_se` join the entry's metrics and `<details>/held_out_cv.npz`
holds the pooled held-out predictions. The task (meta.json) names the figures (core/task.py):
a regression's are in the target's units (RMSE, MSE, MAE, R²; `cv_mse_mean`, `cv_mse_se`),
its held-out files hold the targets and predicted values in units (float64), and its details
the 95% bootstrap interval of the base seed's test RMSE (`test_interval`), for the decision.
Each entry's details carry the trivial baseline of its training set (`baseline`:
pipeline/datasets/baseline.py), and with folds each fold's.
Entries that start from a start model (fine-tuning) are measured against it too:
`l2_sp_penalty` and `sum_sq_dist` join their metrics, and their details hold each layer's
`sq_dist_<layer>` and `rel_dist_<layer>` (pipeline/modeling/metrics.py).
The `record` stage puts these figures into each model's MLflow run. A model that diverged
gets `diverged_at_epoch` instead of figures.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial
from pathlib import Path

import numpy as np

from pipeline.config import BuilderRef, load_config, resolve_entries
from pipeline.core import contracts, stable_bytes
from pipeline.core.headline import entry_metrics, headline_line
from pipeline.core.runner import run_stage
from pipeline.core.task import task_named

log = logging.getLogger(__name__)


def evaluate(params: Path, prepared_dir: Path, models_dir: Path, out: Path, details: Path) -> None:
    config = load_config(params)
    record = contracts.read_sweep_record(models_dir)
    entries = resolve_entries(config, record)

    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(config.base.seed)

    from pipeline.datasets import baseline, prepared, subsets
    from pipeline.modeling.metrics import START_HEADLINE, kernel_arrays, start_points

    splits = {name: prepared.read_split(prepared_dir, name) for name in prepared.SPLITS}
    builder = BuilderRef.of_params(config.model, params)
    if builder.is_users:
        # Custom layers that the builder's file registers must be known to load the models.
        from pipeline.modeling.builders import user_builder

        user_builder(builder)
    meta = contracts.read_meta(prepared_dir)
    task, held = task_named(meta.task), HeldOut(meta)
    starts = start_points(builder, meta, config.base.seed, record, entries)  # fine-tuning's w0
    cv = CrossValidation.of(config, prepared_dir, meta) if config.choose.folds else None
    kernels: dict[str, object] = {}
    # For the report's paired tests: every entry judged on the same validation rows.
    held_out: dict[str, object] = {contracts.HELD_OUT_LABELS: held.targets(splits["val"])}
    train_splits = {None: splits["train"]}  # training_set key -> split
    baselines: dict[object, dict] = {}  # training_set key -> its trivial baseline
    # The folds' training rows do not depend on the entry: their baseline is the same for all.
    cv_baseline = cv.baseline() if cv is not None else {}
    is_mlp = config.model.is_mlp  # the near-linear shares follow its Dense chain
    for entry in entries:
        towers = record.for_entry(entry.name)
        if not towers:
            raise contracts.DataError(
                f"{models_dir / contracts.SWEEP_FILE}: no model for entry {entry.name!r}; "
                f"run `dvc repro train`"
            )
        # Train figures and tanh shares on the rows and labels the entry was trained on; each
        # training set is read once, however many entries share it.
        key = subsets.training_set(entry, config.data, meta.pool_rows)
        if key not in train_splits:
            train_splits[key] = subsets.training_split(
                prepared_dir, key, meta.n_classes, config.base.seed
            )
        entry_splits = {**splits, "train": train_splits[key]}
        if key not in baselines:
            targets = {name: held.targets(split) for name, split in entry_splits.items()}
            trivial = baseline.trivial_baseline(task.name, targets["train"], targets)
            baselines[key] = trivial | cv_baseline
        start = starts.get(entry.name)
        per_seed, base = score_towers(models_dir, towers, entry_splits, meta, is_mlp, start)
        extra = {}
        if base is not None:  # the base seed's model: the judge's predictions, the kernels
            kernels.update({f"{entry.name}/{name}": k for name, k in kernel_arrays(base).items()})
            held_out[entry.name] = held.predict(base, splits["val"])
            extra = held.test_interval(base, splits["test"], config.base.seed)
        headline = entry_metrics(towers, per_seed, task, START_HEADLINE if start else ())
        if cv is not None:
            headline |= cv.score(entry.name, record.folds_of(entry.name), models_dir)
        contracts.write_json(out / f"{entry.name}.json", headline)
        found = entry_details(entry, towers, per_seed) | {"baseline": baselines[key]} | extra
        contracts.write_json(details / f"{entry.name}.json", found)
        log.info("%s: %s", entry.name, headline_line(headline, task))
    # For the report's weight histograms, which must not need Keras to read a model.
    details.mkdir(parents=True, exist_ok=True)
    stable_bytes.save_npz(details / contracts.KERNELS_FILE, kernels)
    stable_bytes.save_npz(details / contracts.HELD_OUT_FILE, held_out)
    if cv is not None:
        stable_bytes.save_npz(details / contracts.HELD_OUT_CV_FILE, cv.predictions)


def score_towers(models_dir: Path, towers, splits, meta, tanh_shares: bool, start=None):
    """Each tower's figures (None: diverged) and the base seed's model (None: diverged);
    `start`: the entry's modeling.metrics.StartPoint when it starts from the start model."""
    from pipeline.modeling import model_metrics

    measure = partial(model_metrics, tanh_shares=tanh_shares, meta=meta, start=start)
    per_seed, base = [], None
    for tower in towers:
        model = load_model(models_dir, tower)
        per_seed.append(None if model is None else measure(model, splits))
        base = model if tower is towers[0] else base
    return per_seed, base


class HeldOut:
    """Per held-out row, by task: the class predicted (int16: a small file) and the label, or
    the value predicted and the target in the target's units (float64); and a regression's
    95% bootstrap interval of the test RMSE, which the decision quotes without the test rows."""

    def __init__(self, meta: contracts.PreparedMeta):
        self.meta = meta

    def targets(self, split):
        if not self.meta.is_regression:
            return split.labels
        return self.meta.in_target_units(np.asarray(split.labels, np.float64))

    def predict(self, model, split):
        from pipeline.modeling.metrics import predicted_classes, predicted_values

        if not self.meta.is_regression:
            return predicted_classes(model, split)
        return predicted_values(model, split, self.meta)

    def loss(self, predicted, targets):
        """Per-row losses: 0/1 (wrong) or the squared error; their mean is the choosing figure."""
        if not self.meta.is_regression:
            return (predicted != targets).astype(np.float64)
        return (predicted - targets) ** 2

    def test_interval(self, model, test, seed: int) -> dict:
        """{"test_interval": [low, high]} for a regression (seeded by `seed`), else {}."""
        if not self.meta.is_regression:
            return {}
        from pipeline.core.spread import rmse_interval

        squared = self.loss(self.predict(model, test), self.targets(test))
        return {"test_interval": list(rmse_interval(squared, seed))}


class CrossValidation:
    """Scores each fold's model on its held-out rows (clean labels): per entry the mean of the
    choosing figure over folds (error, or MSE in the target's units) and its standard error,
    and the pooled held-out predictions (every row predicted by the base seed's model that
    did not train on it)."""

    def __init__(self, pool, k: int, meta: contracts.PreparedMeta, config):
        from pipeline.datasets import folds

        self.k, self.task, self.held = k, task_named(meta.task), HeldOut(meta)
        noise = config.data.effective_label_noise
        self.sets = [
            folds.fold_sets(pool, k, i, meta.n_classes, noise, config.base.seed)
            for i in range(k)
        ]
        self.predictions: dict[str, object] = {
            contracts.HELD_OUT_LABELS: self.held.targets(pool)
        }
        self.base_seed = config.base.seed

    @classmethod
    def of(cls, config, prepared_dir: Path, meta: contracts.PreparedMeta) -> CrossValidation:
        from pipeline.datasets import folds

        pool = folds.read_cv_pool(prepared_dir)
        return cls(pool, config.choose.folds, meta, config)

    def baseline(self) -> dict:
        """The trivial baseline fitted on each fold's training rows (labels as its models
        see them) and scored on the held-out fold, and its mean over folds (`cv_error_mean`,
        `cv_mse_mean`) as the entries' is."""
        from pipeline.datasets.baseline import fold_baseline

        targets = [(self.held.targets(t), self.held.targets(h)) for t, h, _ in self.sets]
        return fold_baseline(self.task.name, targets)

    def score(self, entry: str, towers: list[contracts.TrainedModel], models_dir: Path) -> dict:
        from pipeline.core.spread import mean_and_se

        if any(t.diverged_at_epoch is not None for t in towers):
            return {}
        labels = self.predictions[contracts.HELD_OUT_LABELS]
        unset, dtype = (np.nan, np.float64) if self.task.is_regression else (-1, np.int16)
        pooled = np.full(len(labels), unset, dtype)
        per_fold: dict[int, list[float]] = {}
        for tower in towers:
            _, held_out, rows = self.sets[tower.fold]
            predicted = self.held.predict(load_model(models_dir, tower), held_out)
            loss = self.held.loss(predicted, self.held.targets(held_out))
            per_fold.setdefault(tower.fold, []).append(float(np.mean(loss)))
            if tower.seed == self.base_seed:
                pooled[rows] = predicted
        self.predictions[entry] = pooled
        # Seeds averaged within a fold first: the folds are the independent samples.
        mean, se = mean_and_se([np.mean(losses) for _, losses in sorted(per_fold.items())])
        return {
            self.task.cv_mean: contracts.rounded(mean),
            self.task.cv_se: contracts.rounded(se),
            "n_folds": self.k,
        }


def entry_details(entry, towers: list[contracts.TrainedModel], per_seed: list) -> dict:
    """`<details>/<entry>.json`: every figure of every seed's model, at full precision (the
    report rounds once, when it prints)."""
    return {
        "entry": entry.name,
        "l2_rate": dict(entry.layer_rates),
        "weight_decay": entry.weight_decay,
        "seeds": [
            {"seed": tower.seed, "diverged_at_epoch": tower.diverged_at_epoch, "metrics": m or {}}
            for tower, m in zip(towers, per_seed, strict=True)
        ],
    }


def load_model(models_dir: Path, tower: contracts.TrainedModel):
    """The tower's saved Keras model, or None if it diverged (and so was not saved)."""
    if tower.diverged_at_epoch is not None:
        return None
    import keras

    return keras.saving.load_model(models_dir / tower.folder / contracts.MODEL_FILE, safe_mode=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("metrics"), help="DVC metrics files")
    parser.add_argument("--details", type=Path, default=Path("evaluation"))
    args = parser.parse_args(argv)
    run_stage(
        "evaluate",
        lambda: evaluate(args.params, args.prepared, args.models, args.out, args.details),
        outputs=[args.out, args.details],
    )


if __name__ == "__main__":
    main()

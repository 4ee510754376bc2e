"""Stage `evaluate`: final train/val/test metrics of every model of the sweep, in one process.

The only stage that reads the test split. Per entry it writes `<metrics>/<entry>.json`, the
DVC metrics file with the figures people compare across experiments (and `<name>_mean`,
`<name>_std`, `n_seeds` over the seeds with `base.repeat_seeds`), and
`<details>/<entry>.json` with every figure per seed (per layer, tanh shares), and
`<details>/held_out.npz` with each entry's predicted class per validation row, for the
report's paired tests. With `choose.folds`, each fold's model is scored on its held-out fold:
`cv_error_mean` and `cv_error_se` join the entry's metrics and `<details>/held_out_cv.npz`
holds the pooled held-out predictions. Each entry's details carry the trivial baseline of
its training set (`baseline`: pipeline/datasets/baseline.py), and with folds each fold's.
The `record` stage puts these figures into each model's MLflow run. A model that diverged
gets `diverged_at_epoch` instead of figures.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.config import BuilderRef, load_config, resolve_entries
from pipeline.core import contracts, stable_bytes
from pipeline.core.runner import run_stage

log = logging.getLogger(__name__)


def evaluate(params: Path, prepared_dir: Path, models_dir: Path, out: Path, details: Path) -> None:
    config = load_config(params)
    record = contracts.read_sweep_record(models_dir)
    entries = resolve_entries(config, record.layers)

    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(config.base.seed)

    from pipeline.datasets import baseline, prepared, subsets
    from pipeline.modeling import kernel_arrays, model_metrics, predicted_classes

    splits = {name: prepared.read_split(prepared_dir, name) for name in prepared.SPLITS}
    builder = BuilderRef.of_params(config.model, params)
    if builder.is_users:
        # Custom layers that the builder's file registers must be known to load the models.
        from pipeline.modeling.builders import user_builder

        user_builder(builder)
    meta = contracts.read_meta(prepared_dir)
    cv = CrossValidation.of(config, prepared_dir, meta) if config.choose.folds else None
    kernels: dict[str, object] = {}
    # For the report's paired tests: every entry judged on the same validation rows.
    held_out: dict[str, object] = {contracts.HELD_OUT_LABELS: splits["val"].labels}
    train_splits = {None: splits["train"]}  # training_set key -> split
    baselines: dict[object, dict] = {}  # training_set key -> its trivial baseline
    # The folds' training rows do not depend on the entry: their baseline is the same for all.
    cv_baseline = cv.baseline() if cv is not None else {}
    is_mlp = config.model.builder == "mlp"  # the near-linear shares follow its Dense chain
    for entry in entries:
        towers = record.for_entry(entry.name)
        if not towers:
            raise contracts.DataError(
                f"{models_dir / contracts.SWEEP_FILE}: no model for entry {entry.name!r}; "
                f"run `dvc repro train`"
            )
        # Train error and tanh shares on the rows and labels the entry was trained on; each
        # training set is read once, however many entries share it.
        key = subsets.training_set(entry, config.data, meta.pool_rows)
        if key not in train_splits:
            train_splits[key] = subsets.training_split(
                prepared_dir, key, meta.n_classes, config.base.seed
            )
        entry_splits = {**splits, "train": train_splits[key]}
        if key not in baselines:
            targets = {name: split.labels for name, split in entry_splits.items()}
            trivial = baseline.trivial_baseline(baseline.CLASSIFICATION, targets["train"], targets)
            baselines[key] = trivial | cv_baseline
        per_seed = []
        for tower in towers:
            model = load_model(models_dir, tower)
            per_seed.append(
                None if model is None else model_metrics(model, entry_splits, tanh_shares=is_mlp)
            )
            if model is not None and tower is towers[0]:
                kernels.update(
                    {f"{entry.name}/{name}": k for name, k in kernel_arrays(model).items()}
                )
                held_out[entry.name] = predicted_classes(model, splits["val"])
        headline = entry_metrics(towers, per_seed)
        if cv is not None:
            headline |= cv.score(entry.name, record.folds_of(entry.name), models_dir)
        contracts.write_json(out / f"{entry.name}.json", headline)
        found = entry_details(entry, towers, per_seed) | {"baseline": baselines[key]}
        contracts.write_json(details / f"{entry.name}.json", found)
        log.info("%s: %s", entry.name, headline_line(headline))
    # For the report's weight histograms, which must not need Keras to read a model.
    details.mkdir(parents=True, exist_ok=True)
    stable_bytes.save_npz(details / contracts.KERNELS_FILE, kernels)
    stable_bytes.save_npz(details / contracts.HELD_OUT_FILE, held_out)
    if cv is not None:
        stable_bytes.save_npz(details / contracts.HELD_OUT_CV_FILE, cv.predictions)


class CrossValidation:
    """Scores each fold's model on its held-out rows (clean labels): per entry the mean CV
    error over folds and its standard error, and the pooled held-out predictions (every
    row predicted by the base seed's model that did not train on it)."""

    def __init__(self, pool, k: int, n_classes: int, config):
        from pipeline.datasets import folds

        self.k = k
        noise = config.data.effective_label_noise
        self.sets = [
            folds.fold_sets(pool, k, i, n_classes, noise, config.base.seed) for i in range(k)
        ]
        self.predictions: dict[str, object] = {contracts.HELD_OUT_LABELS: pool.labels}
        self.base_seed = config.base.seed

    @classmethod
    def of(cls, config, prepared_dir: Path, meta: contracts.PreparedMeta) -> CrossValidation:
        from pipeline.datasets import folds

        pool = folds.read_cv_pool(prepared_dir)
        return cls(pool, config.choose.folds, meta.n_classes, config)

    def baseline(self) -> dict:
        """The trivial baseline fitted on each fold's training rows (labels as its models
        see them) and scored on the held-out fold, and `cv_error_mean`, its mean over folds
        as the entries' is."""
        import numpy as np

        from pipeline.datasets.baseline import CLASSIFICATION, trivial_baseline

        folds = []
        for fold, (train, held_out, _) in enumerate(self.sets):
            found = trivial_baseline(CLASSIFICATION, train.labels, {"held_out": held_out.labels})
            folds.append({"fold": fold, "prediction": found["prediction"],
                          "error": found["held_out_error"]})  # fmt: skip
        return {"folds": folds, "cv_error_mean": float(np.mean([f["error"] for f in folds]))}

    def score(self, entry: str, towers: list[contracts.TrainedModel], models_dir: Path) -> dict:
        import numpy as np

        from pipeline.core.spread import mean_and_se
        from pipeline.modeling import predicted_classes

        if any(t.diverged_at_epoch is not None for t in towers):
            return {}
        pooled = np.full(len(self.predictions[contracts.HELD_OUT_LABELS]), -1, np.int16)
        per_fold: dict[int, list[float]] = {}
        for tower in towers:
            _, held_out, rows = self.sets[tower.fold]
            predicted = predicted_classes(load_model(models_dir, tower), held_out)
            per_fold.setdefault(tower.fold, []).append(float(np.mean(predicted != held_out.labels)))
            if tower.seed == self.base_seed:
                pooled[rows] = predicted
        self.predictions[entry] = pooled
        # Seeds averaged within a fold first: the folds are the independent samples.
        mean, se = mean_and_se([np.mean(errors) for _, errors in sorted(per_fold.items())])
        return {
            "cv_error_mean": contracts.rounded(mean),
            "cv_error_se": contracts.rounded(se),
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


def entry_metrics(towers: list[contracts.TrainedModel], per_seed: list[dict | None]) -> dict:
    """The DVC metrics of one entry: the base seed's headline figures, rounded, and their
    mean and sample standard deviation over the seeds when there are several."""
    from pipeline.core.spread import seed_summary

    diverged = [t.diverged_at_epoch for t in towers if t.diverged_at_epoch is not None]
    if diverged:
        return {"diverged_at_epoch": min(diverged), "n_seeds_diverged": len(diverged)}
    base = per_seed[0]
    headline = {name: contracts.rounded(base[name]) for name in contracts.HEADLINE_METRICS}
    if len(per_seed) > 1:
        headline.update({k: contracts.rounded(v) for k, v in seed_summary(per_seed).items()})
    return headline


def headline_line(metrics: dict) -> str:
    """An entry's headline figures in one log line."""
    if "diverged_at_epoch" in metrics:
        return f"diverged at epoch {metrics['diverged_at_epoch']}"
    text = (
        f"train_err {metrics['train_error']:.3f}  val_err {metrics['val_error']:.3f}  "
        f"test_err {metrics['test_error']:.3f}  L2 penalty {metrics['l2_penalty']:.4f}"
    )
    if "cv_error_mean" in metrics:
        text += (
            f"  ({metrics['n_folds']}-fold CV err {metrics['cv_error_mean']:.3f}"
            f" ± {metrics['cv_error_se']:.3f})"
        )
    if "n_seeds" in metrics:
        text += (
            f"  (over {metrics['n_seeds']} seeds: val_err {metrics['val_error_mean']:.3f}"
            f" ± {metrics['val_error_std']:.3f})"
        )
    return text


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

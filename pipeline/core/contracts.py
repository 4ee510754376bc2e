"""The files that pass between stages: names, layouts, and which figures are DVC metrics.

Every stage reads and writes these through this module, so a file name or a metric name is
spelled once. Nothing here imports TensorFlow or MLflow: the report and the tests read these
contracts without paying for either.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.core.errors import DataError
from pipeline.core.prepared_meta import (  # noqa: F401  (the contracts are found here)
    CV_POOL_FILE,
    META_FILE,
    POOL_FILE,
    PreparedMeta,
    read_meta,
    write_meta,
)

# --- models/: written by train, read by evaluate and report ---------------------------------

# models/<entry>/ holds the base seed's model; each extra seed's is in repeats/seed_<seed>/.
MODEL_FILE = "model.keras"
WEIGHTS_FILE = "model.weights.h5"
CONFIG_FILE = "config.json"  # the resolved params the model was trained with
HISTORY_FILE = "history.csv"  # one row per epoch, the numbers MLflow has as epoch_*
REPEATS_DIR = "repeats"
FOLDS_DIR = "folds"  # choose.folds: <model folder>/folds/fold_<i>/
# models/sweep.json: every tower's folder, which towers diverged, and the model's layers.
SWEEP_FILE = "sweep.json"
# No file under models/ or evaluation/ names an MLflow run: DVC hashes them, and a run id
# differs on every run, so `dvc.lock` would never repeat. The sweep's parent run carries
# this tag instead, the digest of models/ (`models_digest`), and later stages find the runs
# by it: the runs that made exactly these models, also after DVC restores them from its cache.
MODELS_DIGEST_TAG = "models_digest"


def model_dir(
    models_dir: Path, entry: str, seed: int | None = None, fold: int | None = None
) -> Path:
    """The folder of `entry`'s model; `seed` is given for extra seeds only, `fold` for the
    models of cross-validation folds."""
    folder = models_dir / entry
    folder = folder if seed is None else folder / REPEATS_DIR / f"seed_{seed}"
    return folder if fold is None else folder / FOLDS_DIR / f"fold_{fold}"


@dataclass(frozen=True)
class TrainedModel:
    """One trained model of the sweep, as `train` leaves it for the later stages."""

    entry: str
    seed: int
    folder: str  # relative to models/
    diverged_at_epoch: int | None  # the first epoch whose loss was NaN or infinite
    fold: int | None = None  # choose.folds: the fold it was scored on (trained on the others)


@dataclass(frozen=True)
class SweepRecord:
    towers: tuple[TrainedModel, ...]
    # The model's layers that take an L2 rate, in order: what the entries' rates resolve to.
    layers: tuple[str, ...]
    # Fine-tuning (config.entries.ModelLayers): the layers with starting weights, and every
    # layer with weights; written only for a start model, so other sweeps' files stay as
    # they were.
    with_start: tuple[str, ...] = ()
    weighted: tuple[str, ...] = ()
    from_file: bool = False

    def for_entry(self, entry: str) -> list[TrainedModel]:
        """The entry's towers on data's training split, base seed first."""
        return [tower for tower in self.towers if tower.entry == entry and tower.fold is None]

    def folds_of(self, entry: str) -> list[TrainedModel]:
        """The entry's cross-validation towers, fold by fold, base seed first in each."""
        found = [t for t in self.towers if t.entry == entry and t.fold is not None]
        return sorted(found, key=lambda t: t.fold)


def write_sweep_record(models_dir: Path, record: SweepRecord) -> None:
    payload = {
        "towers": [tower.__dict__ for tower in record.towers],
        "layers": list(record.layers),
    }
    if record.from_file:
        payload["start"] = {"with_start": list(record.with_start),
                            "weighted": list(record.weighted)}  # fmt: skip
    (models_dir / SWEEP_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def read_sweep_record(models_dir: Path) -> SweepRecord:
    path = models_dir / SWEEP_FILE
    try:
        payload = json.loads(path.read_text())
        towers = tuple(TrainedModel(**tower) for tower in payload["towers"])
        layers = tuple(payload["layers"])
        start = payload.get("start")
        if start is None:
            return SweepRecord(towers, layers)
        return SweepRecord(
            towers, layers, tuple(start["with_start"]), tuple(start["weighted"]), True
        )
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{path}: missing or unreadable; run `dvc repro train`") from None


def files_digest(paths, root: Path) -> str:
    """SHA-256 over every file's path (relative to `root`) and bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def folder_digest(folder: Path) -> str:
    """Every file under `folder` (bytecode caches aside: Python writes them as it imports):
    equal digests, equal contents. Cheap next to training (a few MB)."""
    files = [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return files_digest(files, folder)


def models_digest(models_dir: Path) -> str:
    """The digest MODELS_DIGEST_TAG holds: equal digests, equal models."""
    return folder_digest(models_dir)


# --- data/prepared/: written by prepare (meta.json: pipeline/core/prepared_meta.py) ---

# --- metrics/ and evaluation/: written by evaluate -------------------------------------------

# The figures people compare across experiments, `metrics/<entry>.json`, what `dvc exp show`
# and `dvc metrics diff` list, are each task's `Task.headline` (core/task.py). Everything else
# (per-layer figures, every seed) goes to `evaluation/<entry>.json`, which is an output but
# not a DVC metric. Names of at most 15 characters: DVC sizes `dvc metrics diff`'s columns by
# the longest name and path, and with metrics/hidden_only_1e_2.json that keeps a row within
# 80 columns.

# |z| < 0.5 is "near-linear": there tanh(z) is within 8% of z (tanh(0.5)/0.5 = 0.924) and its
# slope is at least 0.79. |z| > 2 is "saturated": the slope is below 0.071.
NEAR_LINEAR_Z = 0.5
SATURATED_Z = 2.0
# evaluation/kernels.npz: every base-seed model's kernels as "<entry>/<layer>", so the report
# draws weight histograms without loading Keras.
KERNELS_FILE = "kernels.npz"
# evaluation/held_out.npz: the validation labels (`labels`) and every entry's predicted class
# per validation row (its base seed's model, key = entry name), so the report runs paired
# tests on the same rows without loading Keras. Diverged entries have no key.
HELD_OUT_FILE = "held_out.npz"
HELD_OUT_LABELS = "labels"
# evaluation/held_out_cv.npz, with choose.folds: the same over the pooled training and
# validation rows (clean labels), each row predicted by the fold model that held it out.
HELD_OUT_CV_FILE = "held_out_cv.npz"
# Metrics are written with this many significant digits. Two runs on one machine agree to
# every bit; another x86 CPU can differ from about the 7th digit (docs/reliability.md), so
# 5 digits keep the committed files stable while showing every figure the report prints.
SIGNIFICANT_DIGITS = 5


def rounded(value: float) -> float:
    """`value` to SIGNIFICANT_DIGITS significant digits (counts and non-finite values
    unchanged)."""
    if isinstance(value, int) or not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def rounded_figures(figures: dict) -> dict:
    """Every number of `figures` `rounded` (as `metrics/` holds them; MLflow's runs table
    shows a value as logged, and 0.11851851851851852 does not fit its column); other values
    as they are."""
    return {
        name: rounded(value) if isinstance(value, int | float) else value
        for name, value in figures.items()
    }


def write_json(path: Path, payload: dict) -> None:
    """Write `path` whole or not at all: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    partial.replace(path)


# --- refit/: written by refit (with choose.folds), read by report ---------------------------

# refit/refit.json: the chosen entry trained on every training and validation row, and its
# test error with a 95% interval; `{"refit": 0}` without folds (nothing to refit).
REFIT_FILE = "refit.json"


def read_stage_json(path: Path, stage: str) -> dict:
    """A JSON file a stage wrote; one line naming the stage to rerun when it is missing or
    unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise DataError(f"{path}: missing or unreadable; run `dvc repro {stage}`") from None


# refit/decision.json: the decision over the sweep, made once, by refit (the first stage that
# needs it, run with or without folds): {"decision": choosing.Decision.to_json(), with the
# refit's answer under "refit" when choose.folds is set} or {"decision": null} when there is
# no candidate. report renders it; nothing else decides.
DECISION_FILE = "decision.json"


def write_decision(folder: Path, decision: dict | None) -> None:
    write_json(folder / DECISION_FILE, {"decision": decision})


def read_decision(refit_dir: Path) -> dict | None:
    payload = read_stage_json(refit_dir / DECISION_FILE, "refit")
    if "decision" not in payload:
        raise DataError(f"{refit_dir / DECISION_FILE}: unreadable; run `dvc repro -f refit`")
    return payload["decision"]


# --- chosen/: written by chosen, read by register -------------------------------------------

# chosen/chosen.json: what the packaged model is and why (pipeline/chosen.py), with `key`, by
# which register finds its registry version; `{"entry": null, ...}` when nothing was chosen.
CHOSEN_FILE = "chosen.json"


# --- reports/: written by report, read by record ----------------------------------------------

# reports/best.json, the sweep's DVC metrics: numbers only (`dvc metrics diff` compares
# them), plus `best_entry`, the column `dvc exp show` lists each experiment's best by.
BEST_FILE = "best.json"
# reports/decision.json: what the report says about the decision, as strings for the stages
# and people after it (record puts `verdict` and `data_note` into the MLflow parent's
# description; the next commands are the ones choosing.md proposes).
SUMMARY_FILE = "decision.json"


@dataclass(frozen=True)
class DecisionSummary:
    best_entry: str  # lowest validation figure (best.json's figures are its)
    data_note: str | None  # what was done to the training data (the pages' first paragraph)
    chosen_entry: str | None = None  # None: no candidate, every entry diverged
    rule: str | None = None  # the rule applied (it may fall back from the one asked)
    figure: str | None = None  # the figure chosen on, best.json's `chosen_figure`
    test_figure: str | None = None  # the figure of best.json's `answer`
    indistinguishable: tuple[str, ...] = ()  # candidates the judge cannot tell from it
    verdict: str | None = None  # the decision in one line
    next_commands: tuple[str, ...] = ()  # the commands that train the proposed rates
    # core/task.py: what record and refine name the figures by, without reading the data.
    task: str = "classification"  # written only when it is regression


def write_summary(reports_dir: Path, summary: DecisionSummary) -> None:
    payload = dict(summary.__dict__)  # tuples are written as lists
    if summary.task == "classification":  # a classification's decision.json stays as it was
        del payload["task"]
    write_json(reports_dir / SUMMARY_FILE, payload)


def read_summary(reports_dir: Path) -> DecisionSummary:
    path = reports_dir / SUMMARY_FILE
    payload = read_stage_json(path, "report")
    try:
        summary = DecisionSummary(**payload)
    except TypeError:
        raise DataError(f"{path}: unreadable; run `dvc repro -f report`") from None
    return replace(
        summary,
        indistinguishable=tuple(summary.indistinguishable),
        next_commands=tuple(summary.next_commands),
    )

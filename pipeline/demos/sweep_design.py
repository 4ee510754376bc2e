"""What the fine-tuning demonstration compares, and at which size: the sweep entries of each
approach, the target's splits, and the settings of a full and a quick run."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.demos.source_model import SourceSettings

SEED = 42
START_FILE = "pretrained/source.keras"  # in each temporary lab, never in this checkout
TARGET_FILE = "data/raw/target.npz"
FROZEN = ["hidden_*"]  # every layer but the head

# (approach, entry prefix, what the entry holds besides its rate, which key takes the rate)
APPROACHES = (
    ("from scratch", "scratch", {"start_from": None}, "l2"),
    ("fine-tuned, no penalty", "finetune", {}, None),
    ("fine-tuned, L2 toward 0", "l2", {}, "l2"),
    ("fine-tuned, L2-SP", "l2sp", {}, "l2_sp"),
    ("hidden layers frozen", "freeze", {"freeze": FROZEN}, "l2"),
)


@dataclass(frozen=True)
class DemoSize:
    """One run's size: the source model's training, the target's rows, the lab's sweep."""

    source: SourceSettings
    labelled_per_class: int  # the target's labelled rows per class (training + validation)
    folds: int  # choose.folds over the labelled rows
    epochs: int
    batch_size: int
    rates: dict[str, tuple[float, ...]]  # entry prefix -> its rates


FULL = DemoSize(
    source=SourceSettings((64, 64), "relu", 60, 32, 1e-3, SEED),
    labelled_per_class=5,
    folds=5,
    epochs=150,
    batch_size=8,
    rates={
        "scratch": (0.0, 1e-3, 1e-2),
        "finetune": (0.0,),
        "l2": (1e-4, 1e-3, 1e-2),
        "l2sp": (1e-3, 1e-2, 1e-1, 1.0),
        "freeze": (0.0, 1e-2),
    },
)
# Seconds instead of minutes, for the test: the same command and files, a tiny sweep.
QUICK = DemoSize(
    source=SourceSettings((16, 16), "relu", 3, 32, 1e-3, SEED),
    labelled_per_class=4,
    folds=2,
    epochs=3,
    batch_size=8,
    rates={"scratch": (0.0,), "finetune": (0.0,), "l2": (1e-2,), "l2sp": (1e-1,), "freeze": (0.0,)},
)


def rate_name(rate: float) -> str:
    """0 -> `0`, 0.001 -> `1e_3`, 1.0 -> `1e0`: part of an entry name (letters, digits, _)."""
    if rate == 0:
        return "0"
    mantissa, exponent = f"{rate:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}".replace("-", "_")


@dataclass(frozen=True)
class Entry:
    name: str
    approach: str
    rate: float | None  # None: the approach takes no rate
    params: dict


def entries(size: DemoSize) -> tuple[Entry, ...]:
    found = []
    for approach, prefix, fixed, key in APPROACHES:
        for rate in size.rates[prefix]:
            if key is None:
                found.append(Entry(prefix, approach, None, dict(fixed)))
            else:
                name = f"{prefix}_{rate_name(rate)}"
                found.append(Entry(name, approach, rate, {**fixed, key: rate}))
    return tuple(found)


def lab_params(default: dict, size: DemoSize, target_rows: int, n_classes: int) -> dict:
    """The temporary lab's params.yaml: the checkout's own with the target's data, the start
    model, the demo's training and sweep, and k-fold choosing over the labelled rows."""
    params = dict(default)  # compute: and registry: as the checkout has them
    labelled = size.labelled_per_class * n_classes
    # Half the rows test the answer. Of the labelled rows, two per class are the validation
    # split and `train_subset` keeps the others; k-fold CV pools exactly these `labelled`
    # rows. scikit-learn rounds a fraction's rows up: half a row under the count gives it.
    validation = 2 * n_classes
    rest = target_rows - math.ceil(0.5 * target_rows)
    params["base"] = {**default["base"], "seed": SEED, "repeat_seeds": []}
    params["data"] = {
        "source": "npz",
        "npz_path": TARGET_FILE,
        "test_fraction": 0.5,
        "val_fraction": 0.5 * (validation - 0.5) / rest,
        "train_subset": labelled - validation,
        "scaling": "minmax",
    }
    params["model"] = {"builder": "mlp", "start_from": START_FILE, "new_head": True}
    params["train"] = {**default["train"], "epochs": size.epochs, "batch_size": size.batch_size}
    params["sweep"] = {entry.name: entry.params for entry in entries(size)}
    params["grid"] = {"rates": []}
    params["choose"] = {"rule": "min", "folds": size.folds}
    return params

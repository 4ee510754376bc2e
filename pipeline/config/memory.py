"""What a sweep's towers need in memory, and a refusal before training when they cannot fit."""

from __future__ import annotations

import itertools

from pipeline.config.schema import LabConfig
from pipeline.core.errors import ConfigError

FLOAT_BYTES = 4
# Per weight: the weight, its gradient and Adam's two moments (m and v).
COPIES_PER_WEIGHT = 4
# Per unit and batch row: pre-activation, activation and its gradient.
COPIES_PER_ACTIVATION = 3
# The towers' share of the memory available when training starts; the rest is TensorFlow
# (about 1 GB), the data pipeline and the other processes of the machine.
MEMORY_SHARE = 0.5


def mlp_parameter_count(n_features: int, hidden_units: list[int], n_outputs: int) -> int:
    """`n_outputs`: the output layer's width, the classes or a regression's 1."""
    widths = [n_features, *hidden_units, n_outputs]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def estimate_sweep_bytes(config: LabConfig, n_features: int, n_outputs: int) -> int:
    """Bytes the sweep's towers hold while training: parameters x (weight, gradient, Adam's
    two slots) plus one batch of activations (forward and backward) per tower."""
    n_towers = sweep_tower_count(config)
    params = mlp_parameter_count(n_features, config.model.hidden_units, n_outputs)
    units = sum(config.model.hidden_units) + n_outputs
    per_tower = (
        params * COPIES_PER_WEIGHT + config.train.batch_size * units * COPIES_PER_ACTIVATION
    ) * FLOAT_BYTES
    return n_towers * per_tower


def sweep_tower_count(config: LabConfig) -> int:
    """Models the sweep trains: entries x seeds, and again per fold with `choose.folds`.
    Counted as if all trained at once (the folds train one group after the other, so this
    is an upper bound)."""
    return (
        len(config.sweep) * (1 + len(config.base.repeat_seeds)) * (1 + len(config.choose.fold_ids))
    )


def available_memory_bytes() -> int:
    """Memory the system can give this process now without swapping (on Linux, MemAvailable:
    free memory plus reclaimable caches)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(
    config: LabConfig, n_features: int, n_outputs: int, available: int | None = None
) -> int:
    """Raise ConfigError (one line: estimate and limit) when the towers would not fit;
    returns the estimate in bytes. `n_outputs`: the model's output width (classes, or 1)."""
    needed = estimate_sweep_bytes(config, n_features, n_outputs)
    available = available_memory_bytes() if available is None else available
    limit = int(available * MEMORY_SHARE)
    if needed > limit:
        n_towers = sweep_tower_count(config)
        folds = f" x (1 + {config.choose.folds} folds)" if config.choose.folds else ""
        raise ConfigError(
            f"the sweep's {n_towers} models ({len(config.sweep)} entries x"
            f" {1 + len(config.base.repeat_seeds)} seeds{folds}) need about {_gb(needed)} for"
            f" weights, gradients, Adam's two slots and a batch of activations; the limit is"
            f" {_gb(limit)}"
            f" ({MEMORY_SHARE:.0%} of the {_gb(available)} available): use fewer grid.rates,"
            f" grid.layers, grid.train_sizes, base.repeat_seeds or choose.folds, or a smaller model"
        )
    return needed


def _gb(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e7 else f"{n_bytes / 1e6:.2f} MB"

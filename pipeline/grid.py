"""A grid in `params.yaml` expanded into named sweep entries, and what its towers need in memory.

`grid:` is a product: rates x layers (`all`, or `each` layer alone) x training-set sizes x
label noise. Each point becomes an ordinary sweep entry beside the hand-written ones, so
every stage, `metrics/<entry>.json` and `dvc exp show` see it like any other. The expansion
runs in `config.load_config`, once, so every stage sees the same entries.

Names are built from the values alone, so the same grid always gives the same names:
`grid_1e_2_all`, `grid_3e_3_hidden_1`, `grid_0_all_n800`, `grid_1e_2_all_n800_noise0`.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from pipeline.config import LabConfig, SweepEntry
from pipeline.entries import dense_layer_names
from pipeline.errors import ConfigError

ALL_LAYERS = "all"
EACH_LAYER = "each"


def number_token(value: float) -> str:
    """A number as an identifier fragment: 0.01 -> `1e_2`, 0.0046 -> `4p6e_3`, 0 -> `0`,
    0.2 -> `2e_1`; three significant digits, so close but different rates stay apart."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".").replace(".", "p")
    exp = int(exponent)
    return f"{mantissa}e{'_' if exp < 0 else ''}{abs(exp)}"


def layer_names(config: LabConfig) -> tuple[str, ...] | None:
    """The layers a grid can regularize alone, in model order; None for a builder of the
    user's, whose layers are known only once it has built a model (which takes Keras)."""
    model = config.model
    if model.builder == "mlp":
        return dense_layer_names(len(model.hidden_units))
    if model.builder == "cnn":  # the names builders.cnn gives its layers
        convs = tuple(f"conv_{i}" for i in range(1, len(model.cnn.filters) + 1))
        return (*convs, *(("dense",) if model.cnn.dense_units else ()), "output")
    return None


def grid_entries(config: LabConfig) -> dict[str, dict]:
    """name -> sweep entry (as params.yaml would spell it), in a fixed order."""
    grid = config.grid
    layers = layer_names(config) or ()
    targets: list[str] = []
    for choice in grid.layers:
        picked = list(layers) if choice == EACH_LAYER else [choice]
        targets += [t for t in picked if t not in targets]
    entries: dict[str, dict] = {}
    for size in grid.train_sizes:
        for noise in grid.label_noise:
            suffix = (f"_n{size}" if size is not None else "") + (
                f"_noise{number_token(noise)}" if noise is not None else ""
            )
            for rate in grid.rates:
                # At rate 0 every choice of layers is the same unregularized model: one entry.
                for target in [ALL_LAYERS] if rate == 0 else targets:
                    # One layer by name, the others at 0: `train` checks the name against
                    # the built model, whatever the builder.
                    l2: float | dict[str, float] = rate if target == ALL_LAYERS else {target: rate}
                    entry: dict = {"l2": l2}
                    if size is not None:
                        entry["train_size"] = size
                    if noise is not None:
                        entry["label_noise"] = noise
                    entries[f"{grid.prefix}_{number_token(rate)}_{target}{suffix}"] = entry
    return entries


def with_grid_entries(config: LabConfig, path: Path) -> LabConfig:
    """`config` with the grid's entries added after the hand-written ones."""
    layers = layer_names(config)
    for choice in config.grid.layers:
        if layers is None and choice == EACH_LAYER and config.grid.rates:
            raise ConfigError(
                f"{path}: grid.layers has each, but the layers of {config.model.builder} are"
                f" known only once it builds a model; list their names instead, e.g."
                f" grid.layers: [all, conv_1, output]"
            )
        if layers is not None and choice not in (ALL_LAYERS, EACH_LAYER, *layers):
            raise ConfigError(
                f"{path}: grid.layers has {choice!r}; use all, each, or a layer name"
                f" ({', '.join(layers)})"
            )
    generated = grid_entries(config)
    for name in generated:
        if name.lower() in {n.lower() for n in config.sweep}:
            raise ConfigError(
                f"{path}: grid entry {name!r} has the name of a hand-written sweep entry;"
                f" rename that entry or set grid.prefix"
            )
    if not config.sweep and not generated:
        raise ConfigError(f"{path}: sweep = {{}}: add an entry under sweep: or set grid.rates")
    sweep = dict(config.sweep)
    sweep.update({name: SweepEntry.model_validate(e) for name, e in generated.items()})
    return config.model_copy(update={"sweep": sweep})


# --- memory: refuse a grid before training when its towers cannot fit -----------------------

FLOAT_BYTES = 4
# Per weight: the weight, its gradient and Adam's two moments (m and v).
COPIES_PER_WEIGHT = 4
# Per unit and batch row: pre-activation, activation and its gradient.
COPIES_PER_ACTIVATION = 3
# The towers' share of the memory available when training starts; the rest is TensorFlow
# (about 1 GB), the data pipeline and the other processes of the machine.
MEMORY_SHARE = 0.5


def mlp_parameter_count(n_features: int, hidden_units: list[int], n_classes: int) -> int:
    widths = [n_features, *hidden_units, n_classes]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def estimate_sweep_bytes(config: LabConfig, n_features: int, n_classes: int) -> int:
    """Bytes the sweep's towers hold while training: parameters x (weight, gradient, Adam's
    two slots) plus one batch of activations (forward and backward) per tower."""
    n_towers = len(config.sweep) * (1 + len(config.base.repeat_seeds))
    params = mlp_parameter_count(n_features, config.model.hidden_units, n_classes)
    units = sum(config.model.hidden_units) + n_classes
    per_tower = (
        params * COPIES_PER_WEIGHT + config.train.batch_size * units * COPIES_PER_ACTIVATION
    ) * FLOAT_BYTES
    return n_towers * per_tower


def available_memory_bytes() -> int:
    """Memory the system can give this process now without swapping: Linux's MemAvailable
    (free memory plus reclaimable caches), elsewhere the free pages."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(
    config: LabConfig, n_features: int, n_classes: int, available: int | None = None
) -> int:
    """Raise ConfigError (one line: estimate and limit) when the towers would not fit;
    returns the estimate in bytes."""
    needed = estimate_sweep_bytes(config, n_features, n_classes)
    available = available_memory_bytes() if available is None else available
    limit = int(available * MEMORY_SHARE)
    if needed > limit:
        n_towers = len(config.sweep) * (1 + len(config.base.repeat_seeds))
        raise ConfigError(
            f"the sweep's {n_towers} models ({len(config.sweep)} entries x"
            f" {1 + len(config.base.repeat_seeds)} seeds) need about {_gb(needed)} for weights,"
            f" gradients, Adam's two slots and a batch of activations; the limit is {_gb(limit)}"
            f" ({MEMORY_SHARE:.0%} of the {_gb(available)} available): use fewer grid.rates,"
            f" grid.layers, grid.train_sizes or base.repeat_seeds, or a smaller model"
        )
    return needed


def _gb(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e7 else f"{n_bytes / 1e6:.2f} MB"

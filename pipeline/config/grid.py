"""A grid in `params.yaml` expanded into named sweep entries.

`grid:` is a product: rates x layers (`all`, or `each` layer alone) x training-set sizes x
label noise. Each point becomes an ordinary sweep entry beside the hand-written ones, so
every stage, `metrics/<entry>.json` and `dvc exp show` see it like any other. The expansion
runs in `config.load_config`, once, so every stage sees the same entries.

Names are built from the values alone, so the same grid always gives the same names:
`grid_1e_2_all`, `grid_3e_3_hidden_1`, `grid_0_all_n800`, `grid_1e_2_all_n800_noise0`.
Fine-tuning, `grid.l2_sp` adds entries with L2 toward the start instead of `l2`:
`grid_sp_1e_2_all`, `grid_sp_1e_2_conv_1`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config.entries import builtin_layer_names
from pipeline.config.schema import LabConfig, SweepEntry
from pipeline.core.errors import ConfigError

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
    return builtin_layer_names(config.model)


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
            for key, rates in (("l2", grid.rates), ("l2_sp", _sp_rates(grid))):
                tag = "_sp" if key == "l2_sp" else ""
                for rate in rates:
                    # At rate 0 every choice of layers is the same unregularized model.
                    for target in [ALL_LAYERS] if rate == 0 else targets:
                        # One layer by name, the others at 0: `train` checks the name
                        # against the built model, whatever the builder.
                        entry: dict = {key: rate if target == ALL_LAYERS else {target: rate}}
                        if size is not None:
                            entry["train_size"] = size
                        if noise is not None:
                            entry["label_noise"] = noise
                        name = f"{grid.prefix}{tag}_{number_token(rate)}_{target}{suffix}"
                        entries[name] = entry
    return entries


def _sp_rates(grid) -> list[float]:
    """`grid.l2_sp`'s rates; its 0 is `grid.rates`' 0 (the same fine-tuned model, no
    penalty), made once."""
    return [rate for rate in grid.l2_sp if rate > 0 or 0.0 not in grid.rates]


def with_grid_entries(config: LabConfig, path: Path) -> LabConfig:
    """`config` with the grid's entries added after the hand-written ones."""
    layers = layer_names(config)
    start = config.model.start_from
    if config.grid.l2_sp and start is None:
        raise ConfigError(
            f"{path}: grid.l2_sp holds a model close to its starting weights, and there is no"
            f" start model; set model.start_from to a .keras file under pretrained/ or use"
            f" grid.rates"
        )
    for choice in config.grid.layers:
        if layers is None and choice == EACH_LAYER and (config.grid.rates or config.grid.l2_sp):
            model = start if start is not None else config.model.builder
            raise ConfigError(
                f"{path}: grid.layers has each, but the layers of {model} are known only once"
                f" Keras has the model; list their names instead, e.g."
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

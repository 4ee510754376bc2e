"""Sweep entries resolved once into small typed specs, and the towers they train as.

An entry is what `params.yaml` names under `sweep:`; a tower is one model trained for it:
one per seed (`base.seed`, then each of `base.repeat_seeds`). Every stage works from these
specs instead of looking entries up by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.config.rates import resolve_rates
from pipeline.config.schema import LabConfig, ModelConfig


def dense_layer_names(n_hidden: int) -> tuple[str, ...]:
    """The MLP's Dense layers in order: hidden_1, ..., hidden_n, output (the names
    modeling/builders.py gives them)."""
    return (*(f"hidden_{i}" for i in range(1, n_hidden + 1)), "output")


def cnn_layer_names(n_convs: int, has_dense: bool) -> tuple[str, ...]:
    """The convnet's regularizable layers in order: conv_1, ..., conv_n, [dense,] output
    (the names modeling/builders.py gives them)."""
    convs = tuple(f"conv_{i}" for i in range(1, n_convs + 1))
    return (*convs, *(("dense",) if has_dense else ()), "output")


def builtin_layer_names(model: ModelConfig) -> tuple[str, ...] | None:
    """The regularizable layers of a built-in builder, in model order; None for a builder
    of the user's, whose layers are known only once it has built a model."""
    if model.builder == "mlp":
        return dense_layer_names(len(model.hidden_units))
    if model.builder == "cnn":
        return cnn_layer_names(len(model.cnn.filters), bool(model.cnn.dense_units))
    return None


@dataclass(frozen=True)
class EntrySpec:
    name: str
    layer_rates: tuple[tuple[str, float], ...]  # (layer name, Keras L2 rate), in layer order
    weight_decay: float
    # Set: trained on the first `train_size` rows of the nested pool with `label_noise`
    # flipped (pipeline/datasets/subsets.py); None for both: on `data:`'s training split.
    train_size: int | None = None
    label_noise: float | None = None

    @property
    def uses_pool(self) -> bool:
        return self.train_size is not None or self.label_noise is not None

    @property
    def rates(self) -> tuple[float, ...]:
        return tuple(rate for _, rate in self.layer_rates)

    @property
    def uniform_rate(self) -> float | None:
        """The rate every layer shares, or None when the layers differ."""
        return self.rates[0] if len(set(self.rates)) == 1 else None

    @property
    def rates_label(self) -> str:
        """`0.01`, or `0.01 / 0.01 / 0` for per-layer rates."""
        uniform = self.uniform_rate
        return f"{uniform:g}" if uniform is not None else " / ".join(f"{r:g}" for r in self.rates)

    @property
    def is_pure_l2(self) -> bool:
        """Regularized by the L2 term alone (or not at all): it has a place on a rate axis."""
        return self.weight_decay == 0


@dataclass(frozen=True)
class ModelSpec:
    entry: EntrySpec
    seed: int
    is_repeat: bool  # trained with one of base.repeat_seeds
    fold: int | None = None  # choose.folds: trained on the other folds, scored on this one

    @property
    def name(self) -> str:
        """Unique in the sweep: `-` cannot occur in an entry name (and `@` not in a Keras name)."""
        name = f"{self.entry.name}-seed{self.seed}" if self.is_repeat else self.entry.name
        return name if self.fold is None else f"{name}-fold{self.fold}"

    @property
    def owner(self) -> str | None:
        """A fold tower's model of the same entry and seed on data's split (its MLflow run
        nests under that one's); None for the others."""
        return None if self.fold is None else ModelSpec(self.entry, self.seed, self.is_repeat).name


def resolve_entries(
    config: LabConfig, layers: Sequence[str] | None = None
) -> tuple[EntrySpec, ...]:
    """Each entry's rate per layer. `layers`: the model's regularizable layers in order
    (`train` takes them from the built model, later stages from models/sweep.json); only
    the built-in MLP's are known without building it."""
    if not layers:
        if config.model.builder != "mlp":
            raise ValueError(f"the layers of model.builder {config.model.builder!r} are needed")
        layers = builtin_layer_names(config.model)
    return tuple(
        EntrySpec(
            name=name,
            layer_rates=resolve_rates(entry.l2, layers, f"sweep.{name}.l2"),
            weight_decay=entry.weight_decay,
            train_size=entry.train_size,
            label_noise=entry.label_noise,
        )
        for name, entry in config.sweep.items()
    )


def resolve_towers(config: LabConfig, layers: Sequence[str] | None = None) -> tuple[ModelSpec, ...]:
    """Every entry with the base seed, then every entry again per extra seed; with
    `choose.folds`, then all of those again per fold."""
    entries = resolve_entries(config, layers)
    towers = [ModelSpec(entry, config.base.seed, is_repeat=False) for entry in entries]
    for seed in config.base.repeat_seeds:
        towers += [ModelSpec(entry, seed, is_repeat=True) for entry in entries]
    base = list(towers)
    for fold in config.choose.fold_ids:
        towers += [ModelSpec(t.entry, t.seed, t.is_repeat, fold) for t in base]
    return tuple(towers)

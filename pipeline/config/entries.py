"""Sweep entries resolved once into small typed specs, and the towers they train as.

An entry is what `params.yaml` names under `sweep:`; a tower is one model trained for it:
one per seed (`base.seed`, then each of `base.repeat_seeds`). Every stage works from these
specs instead of looking entries up by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pipeline.config.rates import resolve_rates
from pipeline.config.schema import LabConfig, ModelConfig, SweepEntry
from pipeline.core.errors import ConfigError


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
    of the user's or a start model's file, whose layers are known only once Keras has the
    model."""
    if model.start_from is not None:
        return None
    if model.builder == "mlp":
        return dense_layer_names(len(model.hidden_units))
    if model.builder == "cnn":
        return cnn_layer_names(len(model.cnn.filters), bool(model.cnn.dense_units))
    return None


@dataclass(frozen=True)
class ModelLayers:
    """What the entries' rates and patterns resolve against: the layers of the model every
    tower builds (modeling/builders.model_layers; later stages: models/sweep.json)."""

    regularizable: tuple[str, ...]  # the layers that take `l2`, in model order
    # Fine-tuning: the regularizable layers whose weights come from the start model (all but
    # a new head); they alone take `l2_sp`. Empty: no start model.
    with_start: tuple[str, ...] = ()
    # Every layer that has weights, in model order (what `freeze` patterns match).
    weighted: tuple[str, ...] = ()
    from_file: bool = False  # the towers are a start model's network (fine-tuning)

    @classmethod
    def of(cls, layers) -> ModelLayers:
        """From ModelLayers, a sweep record (core.contracts.SweepRecord) or layer names."""
        if isinstance(layers, ModelLayers):
            return layers
        if hasattr(layers, "from_file"):
            record = layers
            weighted = record.weighted or record.layers
            return cls(tuple(record.layers), record.with_start, weighted, record.from_file)
        return cls(tuple(layers), (), tuple(layers))

    @property
    def fine_tuning(self) -> bool:
        return self.from_file


@dataclass(frozen=True)
class Tuning:
    """How an entry's models relate to `model.start_from` (fine-tuning); the default: no
    start model at all."""

    from_start: bool = False  # starts from the start model's weights (else from scratch)
    # (layer, rate) of L2 toward the starting weights, for every layer of `with_start`
    # in order; () when the entry does not start from a model.
    sp_rates: tuple[tuple[str, float], ...] = ()
    frozen: tuple[str, ...] = ()  # layers kept at their starting weights, model order

    @property
    def holds_close(self) -> bool:
        """Some layer is pulled toward its starting weights (`l2_sp` > 0)."""
        return any(rate > 0 for _, rate in self.sp_rates)


NO_TUNING = Tuning()


@dataclass(frozen=True)
class EntrySpec:
    name: str
    layer_rates: tuple[tuple[str, float], ...]  # (layer name, Keras L2 rate), in layer order
    weight_decay: float
    # Set: trained on the first `train_size` rows of the nested pool with `label_noise`
    # flipped (pipeline/datasets/subsets.py); None for both: on `data:`'s training split.
    train_size: int | None = None
    label_noise: float | None = None
    tuning: Tuning = NO_TUNING

    @property
    def sp_rates(self) -> tuple[float, ...]:
        return tuple(rate for _, rate in self.tuning.sp_rates)

    @property
    def uniform_sp_rate(self) -> float | None:
        """The `l2_sp` rate every layer with a start shares; None when they differ or the
        entry has no start."""
        rates = self.sp_rates
        return rates[0] if rates and len(set(rates)) == 1 else None

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
        return self.weight_decay == 0 and not self.tuning.holds_close


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
    config: LabConfig, layers: ModelLayers | Sequence[str] | None = None
) -> tuple[EntrySpec, ...]:
    """Each entry's rate per layer (and, fine-tuning, its start, `l2_sp` and frozen layers).
    `layers`: the model's (`train` takes them from the built model, later stages from
    models/sweep.json); only the built-in MLP's are known without building it."""
    if not layers:
        if not config.model.is_mlp:
            raise ValueError(f"the layers of model {config.model.builder!r} are needed")
        layers = builtin_layer_names(config.model)
    model_layers = ModelLayers.of(layers)
    entries = []
    for name, entry in config.sweep.items():
        tuning = resolve_tuning(name, entry, model_layers)
        rates = resolve_rates(entry.l2, model_layers.regularizable, f"sweep.{name}.l2")
        entries.append(
            EntrySpec(
                name=name,
                layer_rates=_unfrozen(rates, tuning.frozen, entry.l2, f"sweep.{name}.l2"),
                weight_decay=entry.weight_decay,
                train_size=entry.train_size,
                label_noise=entry.label_noise,
                tuning=tuning,
            )
        )
    return tuple(entries)


def resolve_tuning(name: str, entry: SweepEntry, layers: ModelLayers) -> Tuning:
    """The entry's start, `l2_sp` per layer with a start, and frozen layers, checked."""
    key = f"sweep.{name}"
    uses_sp = entry.l2_sp != 0.0
    if not layers.fine_tuning:
        for field, used in (("l2_sp", uses_sp), ("freeze", bool(entry.freeze))):
            if used:
                raise ConfigError(
                    f"{key}.{field} needs a start model; set model.start_from to a .keras file"
                    f" under pretrained/ or remove {field}"
                )
        return NO_TUNING
    frozen = _frozen_layers(entry.freeze, layers, f"{key}.freeze")
    if entry.from_scratch:
        if uses_sp:
            raise ConfigError(
                f"{key}.l2_sp: this entry trains from scratch (start_from: null), so it has no"
                f" starting weights to be held close to; use l2, or remove start_from: null"
            )
        return Tuning(from_start=False, frozen=frozen)
    sp = _sp_rates(entry.l2_sp, layers, f"{key}.l2_sp")
    return Tuning(True, _unfrozen(sp, frozen, entry.l2_sp, f"{key}.l2_sp"), frozen)


def _sp_rates(l2_sp, layers: ModelLayers, key: str) -> tuple[tuple[str, float], ...]:
    """`l2_sp` over the layers with a start; a number leaves a new head out, a list or a
    mapping that gives the head a rate is refused."""
    if isinstance(l2_sp, float):
        return tuple((name, l2_sp) for name in layers.with_start)
    rates = resolve_rates(l2_sp, layers.regularizable, key)
    for layer, rate in rates:
        if rate > 0 and layer not in layers.with_start:
            raise ConfigError(
                f"{key}: layer {layer!r} is a new head with no starting weights, so it cannot be"
                f" held close to them; give it l2 instead (the layers with a start are"
                f" {', '.join(layers.with_start)})"
            )
    return tuple(pair for pair in rates if pair[0] in layers.with_start)


def _unfrozen(rates, frozen: tuple[str, ...], spec, key: str) -> tuple[tuple[str, float], ...]:
    """A frozen layer does not train and Keras leaves its penalty out of the loss: one
    number for all layers gives it 0; a rate written for it by name or position is refused."""
    if not frozen:
        return rates
    for layer, rate in rates:
        if rate > 0 and layer in frozen and not isinstance(spec, float):
            raise ConfigError(
                f"{key} gives frozen layer {layer!r} a rate of {rate:g}; a frozen layer does not"
                f" train, so its rate would do nothing: give it 0 or remove it from freeze"
            )
    return tuple((layer, 0.0 if layer in frozen else rate) for layer, rate in rates)


def _frozen_layers(patterns: Sequence[str], layers: ModelLayers, key: str) -> tuple[str, ...]:
    frozen: set[str] = set()
    for pattern in patterns:
        hits = [name for name in layers.weighted if fnmatchcase(name, pattern)]
        if not hits:
            raise ConfigError(
                f"{key}: {pattern!r} matches no layer with weights; the layers are"
                f" {', '.join(layers.weighted)}"
            )
        frozen.update(hits)
    return tuple(name for name in layers.weighted if name in frozen)


def resolve_towers(
    config: LabConfig, layers: ModelLayers | Sequence[str] | None = None
) -> tuple[ModelSpec, ...]:
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

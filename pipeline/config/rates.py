"""A sweep entry's `l2`, in any of its three forms, resolved against a model's layer names.

- a number: every regularizable kernel gets that rate;
- a list: one rate per regularizable layer, in layer order;
- a mapping from layer name or glob pattern (`fnmatch`: `*`, `?`, `[...]`) to rate: unlisted
  layers get 0.

The layer names are those of the model the entry trains (regularize.regularizable_layers),
so this works for any builder. Nothing here imports TensorFlow: the report uses it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from pipeline.core.errors import ConfigError

L2Spec = float | Sequence[float] | Mapping[str, float]


def resolve_rates(l2: L2Spec, layers: Sequence[str], key: str) -> tuple[tuple[str, float], ...]:
    """(layer name, rate) for every layer of `layers`, in order.

    `key` names the setting in messages (`sweep.<entry>.l2`). Raises ConfigError for a list
    of the wrong length, a pattern that matches no layer, or a layer that two patterns match.
    """
    order = ", ".join(layers)
    if isinstance(l2, Mapping):
        return _from_mapping(l2, layers, key, order)
    if isinstance(l2, Sequence) and not isinstance(l2, str):
        if len(l2) != len(layers):
            raise ConfigError(
                f"{key} has {len(l2)} rates but the model has {len(layers)} regularizable "
                f"layers ({order}); give one rate per layer in this order, one number for all, "
                f"or a mapping such as {{{layers[0] if layers else 'dense'}: 0.001}}"
            )
        return tuple((name, float(rate)) for name, rate in zip(layers, l2, strict=True))
    return tuple((name, float(l2)) for name in layers)


def _from_mapping(
    l2: Mapping[str, float], layers: Sequence[str], key: str, order: str
) -> tuple[tuple[str, float], ...]:
    matched_by: dict[str, str] = {}
    for pattern in l2:
        hits = [name for name in layers if fnmatchcase(name, pattern)]
        if not hits:
            raise ConfigError(
                f"{key}: {pattern!r} matches no regularizable layer; the layers are {order}"
            )
        for name in hits:
            if name in matched_by:
                raise ConfigError(
                    f"{key}: layer {name!r} is matched by both {matched_by[name]!r} and "
                    f"{pattern!r}; give each layer one rate (narrow one of the patterns)"
                )
            matched_by[name] = pattern
    return tuple(
        (name, float(l2[matched_by[name]]) if name in matched_by else 0.0) for name in layers
    )

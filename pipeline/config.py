"""`params.yaml`, validated once into frozen, typed config that every stage reads.

Nothing here imports TensorFlow, so a bad edit is reported in well under a second,
before any stage spends time on imports or training.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from pipeline.errors import ConfigError
from pipeline.rates import resolve_rates

# Entry names are interpolated into the shell commands of `dvc.yaml` (`--entry ${key}`),
# so only plain identifiers are allowed.
ENTRY_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
EntryName = Annotated[str, Field(pattern=ENTRY_NAME_PATTERN)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)]

# User CSVs live here: `prepare` depends on this folder in dvc.yaml, so editing one reruns it.
RAW_DATA_DIR = Path("data/raw")
# Users' model builders live here: `train` and `evaluate` depend on this folder in dvc.yaml.
BUILDERS_DIR = Path("builders")
BUILDER_PATTERN = r"^(mlp|cnn|[A-Za-z0-9_./-]+\.py:[A-Za-z_][A-Za-z0-9_]*)$"

Activation = Literal["tanh", "relu", "sigmoid", "elu", "selu", "gelu", "softplus", "swish"]


class _Section(BaseModel):
    # strict: a quoted "0.01" or a `true` must not silently become a number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]


class BaseConfig(_Section):
    seed: Seed
    # Extra seeds to train every entry with again (initialisation and batch order only:
    # the data split and label noise keep `seed`), for mean +- spread in the report.
    repeat_seeds: list[Seed] = []
    experiment: Annotated[str, Field(min_length=1, max_length=200)]


class DataConfig(_Section):
    source: Literal["digits", "csv", "images", "npz"]
    csv_path: str | None = None
    target_column: str | None = None
    # Own data (README: Your own model and data). `shape`: null keeps the source's own shape
    # (digits and CSV flat, images h x w x c, npz as `x` is stored); `flat` makes vectors;
    # `image` serves digits as 8x8x1 images.
    image_dir: str | None = None
    image_size: Annotated[
        list[Annotated[int, Field(ge=1, le=4096)]], Field(min_length=2, max_length=2)
    ] = [32, 32]
    color_mode: Literal["grayscale", "rgb"] = "grayscale"
    npz_path: str | None = None
    shape: Literal["flat", "image"] | None = None
    test_fraction: Fraction
    val_fraction: Fraction
    train_subset: Annotated[int, Field(ge=2)] | None = None
    label_noise: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] = 0.0
    scaling: Literal["minmax", "standard"] = "minmax"


class CnnConfig(_Section):
    """The built-in convnet (`model.builder: cnn`): a Conv2D + 2x2 max-pool per filter count."""

    filters: Annotated[list[Annotated[int, Field(ge=1, le=4096)]], Field(min_length=1)] = [16, 32]
    kernel_size: Annotated[int, Field(ge=1, le=15)] = 3
    dense_units: Annotated[int, Field(ge=0, le=65536)] = 64  # 0: the output layer only
    activation: Activation = "relu"


class ModelConfig(_Section):
    # mlp | cnn | builders/<file>.py:<function> (pipeline/builders.py)
    builder: Annotated[str, Field(pattern=BUILDER_PATTERN)] = "mlp"
    hidden_units: Annotated[list[Annotated[int, Field(ge=1, le=65536)]], Field(min_length=1)]
    activation: Activation
    cnn: CnnConfig = CnnConfig()

    @property
    def n_dense_layers(self) -> int:
        return len(self.hidden_units) + 1


class TrainConfig(_Section):
    learning_rate: Annotated[float, Field(gt=0.0, le=10.0, allow_inf_nan=False)]
    batch_size: Annotated[int, Field(ge=1)]
    epochs: Annotated[int, Field(ge=1)]


class SweepEntry(_Section):
    # One rate, one per regularizable layer in order, or {layer name or glob: rate}.
    l2: float | list[float] | dict[str, float] = 0.0
    # Decoupled weight decay (AdamW): each step shrinks every kernel by
    # learning_rate * weight_decay * w, outside the loss. Biases are never decayed.
    weight_decay: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    # Train on the first `train_size` rows of the nested training pool (subsets.py) with
    # `label_noise` of them flipped, instead of the split that `data:` describes.
    train_size: Annotated[int, Field(ge=2)] | None = None
    label_noise: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] | None = None

    @property
    def uses_pool(self) -> bool:
        """Trained on a prefix of the nested pool rather than on `data:`'s training split."""
        return self.train_size is not None or self.label_noise is not None

    @field_validator("l2", mode="before")
    @classmethod
    def _rates_are_finite_and_non_negative(cls, value: object) -> object:
        # Checked here, not by constrained types: pydantic's messages for a union of
        # constrained floats and lists name internal types instead of the problem.
        if isinstance(value, dict):
            rates = list(value.values())
            if not all(isinstance(k, str) and k for k in value):
                raise ValueError("layer names and patterns must be non-empty text")
        else:
            rates = value if isinstance(value, list) else [value]
        valid = all(
            isinstance(r, int | float) and not isinstance(r, bool) and math.isfinite(r) and r >= 0
            for r in rates
        )
        if not valid or not rates:
            raise ValueError(
                "an L2 rate must be a finite number >= 0, a list of them (one per layer), or a"
                " mapping from layer name or glob pattern to rate"
            )
        if isinstance(value, dict):
            return {k: float(r) for k, r in value.items()}
        return [float(r) for r in value] if isinstance(value, list) else float(value)


GridLayers = Annotated[str, Field(pattern=r"^(all|each|[A-Za-z][A-Za-z0-9_]{0,40})$")]


class GridConfig(_Section):
    """A product of settings that expands into named sweep entries (grid.py)."""

    # No rates: no grid entries. 0 is the unregularized model.
    rates: list[float] = []
    # `all`: every Dense layer at the rate; `each`: one entry per layer, that layer alone;
    # a layer name: that layer alone.
    layers: Annotated[list[GridLayers], Field(min_length=1)] = ["all"]
    # null: `data:`'s training split; a number n: the first n rows of the nested pool.
    train_sizes: Annotated[list[Annotated[int, Field(ge=2)] | None], Field(min_length=1)] = [None]
    # null: data.label_noise (on the pool when a size is set); a number: that share flipped.
    label_noise: Annotated[
        list[Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] | None],
        Field(min_length=1),
    ] = [None]
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,15}$")] = "grid"

    @field_validator("rates", mode="before")
    @classmethod
    def _rates_are_numbers(cls, value: object) -> object:
        # `dvc exp run -S grid.rates=[0,1e-3]` gives an int 0 beside floats.
        ok = isinstance(value, list) and all(
            isinstance(r, int | float) and not isinstance(r, bool) and math.isfinite(r) and r >= 0
            for r in value
        )
        if not ok:
            raise ValueError("grid.rates must be a list of finite numbers >= 0, e.g. [0, 1e-3]")
        return [float(r) for r in value]

    @field_validator("label_noise", mode="before")
    @classmethod
    def _noise_as_float(cls, value: object) -> object:
        if isinstance(value, list):
            return [
                float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value
            ]
        return value


class LabConfig(_Section):
    base: BaseConfig
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    # May be empty when the grid gives entries; load_config adds the grid's entries here.
    sweep: dict[EntryName, SweepEntry]
    grid: GridConfig = GridConfig()

    def entry(self, name: str) -> SweepEntry:
        if name not in self.sweep:
            raise ConfigError(
                f"sweep entry {name!r} is not in params.yaml; known: {', '.join(self.sweep)}"
            )
        return self.sweep[name]

    def layer_rates(self, name: str) -> tuple[float, ...]:
        """The MLP's L2 rate per Dense layer, hidden layers first, output layer last."""
        n = self.model.n_dense_layers
        layers = [*(f"hidden_{i}" for i in range(1, n)), "output"]
        resolved = resolve_rates(self.entry(name).l2, layers, f"sweep.{name}.l2")
        return tuple(rate for _, rate in resolved)


def load_config(path: Path | str = "params.yaml") -> LabConfig:
    """Read and validate `path`; raise ConfigError with a one-line, actionable message."""
    path = Path(path)
    try:
        raw = YAML(typ="safe", pure=True).load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; run from the project root") from None
    except YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{line}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        config = LabConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None
    _check_cross_fields(config, path)
    # Imported here: grid.py builds on this module's types.
    from pipeline.grid import with_grid_entries

    return with_grid_entries(config, path)


# Pydantic's wording for a wrong type names Python types; these say it in YAML's terms.
_TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be text",
    "list_type": "must be a list, e.g. [64, 64]",
    "dict_type": "must be a mapping of keys, one `key: value` per line",
    "model_type": "must be a mapping of keys, one `key: value` per line",
}
# What a pattern-checked key accepts, in words rather than as the regular expression.
_PATTERN_MESSAGES = {
    "model.builder": "must be mlp, cnn, or builders/<file>.py:<function> (a function in a file"
    " under builders/ that returns the unregularized keras.Model)",
}
_NUMERIC_TYPES = {"int_type", "int_parsing", "float_type", "float_parsing", "value_error"}


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"] if part != "[key]")
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {key!r}; check its spelling (allowed keys are listed in README.md)"
    if kind == "missing":
        return f"missing key {key!r}; add it (see README.md)"
    if "[key]" in error["loc"]:
        return (
            f"sweep entry name {error['input']!r} is not allowed: use letters, digits and"
            f" underscores, starting with a letter (names reach shell commands in dvc.yaml)"
        )
    value = error["input"]
    message = _TYPE_MESSAGES.get(kind) or error["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        message = f"must be one of {error['ctx']['expected']}"
    if kind == "string_pattern_mismatch" and key in _PATTERN_MESSAGES:
        message = _PATTERN_MESSAGES[key]
    if kind in _NUMERIC_TYPES and _has_quoted_number(value):
        message += "; remove the quotes to make it a number"
    elif value is None:
        message += " (an empty value is `null` in YAML)"
    elif isinstance(value, bool) and kind in _NUMERIC_TYPES:
        message += " (`true` and `false` are booleans, not numbers)"
    extra = len(exc.errors()) - 1
    more = f" (and {_count(extra, 'more problem')})" if extra else ""
    return f"{key} = {_yaml(value)}: {message}{more}"


def _yaml(value: object) -> str:
    """`value` as it would be written in params.yaml (YAML flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a double-quoted JSON string is a YAML string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _has_quoted_number(value: object) -> bool:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            try:
                if math.isfinite(float(item)):
                    return True
            except ValueError:
                continue
    return False


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check_cross_fields(config: LabConfig, path: Path) -> None:
    seen: dict[str, str] = {}
    for name in config.sweep:
        # models/<name> of two entries would be one folder on macOS and Windows.
        if name.lower() in seen:
            raise ConfigError(
                f"{path}: sweep entries {seen[name.lower()]!r} and {name!r} differ only in case;"
                f" their output folders would collide on macOS and Windows: rename one"
            )
        seen[name.lower()] = name
    seeds = [config.base.seed, *config.base.repeat_seeds]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"{path}: base.repeat_seeds = {_yaml(config.base.repeat_seeds)}: each extra seed must"
            f" differ from base.seed ({config.base.seed}) and from the others"
        )
    expected = config.model.n_dense_layers
    for name, entry in config.sweep.items():
        # Other builders' layers are known once the model is built: `train` checks them.
        if config.model.builder != "mlp":
            continue
        if isinstance(entry.l2, dict):
            mlp_layers = [*(f"hidden_{i}" for i in range(1, expected)), "output"]
            try:
                resolve_rates(entry.l2, mlp_layers, f"sweep.{name}.l2")
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        if isinstance(entry.l2, list) and len(entry.l2) != expected:
            raise ConfigError(
                f"{path}: sweep.{name}.l2 has {_count(len(entry.l2), 'rate')} but the model has"
                f" {_count(expected, 'Dense layer')} ({len(config.model.hidden_units)} hidden +"
                f" output);"
                f" give one rate per layer or a single number for all"
            )
    _check_own_model_and_data(config, path)
    data = config.data
    if data.source == "csv" and not (data.csv_path and data.target_column):
        raise ConfigError(
            f"{path}: data.source is 'csv' but data.csv_path or data.target_column is empty;"
            f" set both (e.g. csv_path: data/raw/my.csv, target_column: label)"
        )
    raw = Path(os.path.normpath(data.csv_path or RAW_DATA_DIR))
    if data.source == "csv" and (raw.is_absolute() or RAW_DATA_DIR not in raw.parents):
        raise ConfigError(
            f"{path}: data.csv_path = {data.csv_path!r}: put the CSV under {RAW_DATA_DIR}/ and"
            f" give its path from the project root (e.g. {RAW_DATA_DIR}/my.csv), so that DVC"
            f" reruns prepare when the file changes"
        )
    if data.test_fraction + data.val_fraction >= 1.0:
        raise ConfigError(
            f"{path}: data.test_fraction + data.val_fraction = "
            f"{data.test_fraction + data.val_fraction:g}; it must leave rows for training (< 1)"
        )


def _check_own_model_and_data(config: LabConfig, path: Path) -> None:
    """The paths of a user's builder file, image folder or .npz: inside the project, in the
    folders DVC tracks for them, so a change there reruns the stages that read them."""
    data, builder = config.data, config.model.builder
    if builder not in ("mlp", "cnn"):
        _check_inside(path, "model.builder", builder, builder.rpartition(":")[0], BUILDERS_DIR,
                      "builders/my_model.py:build")  # fmt: skip
    for source, key, example in (("images", "image_dir", "data/raw/pets"),
                                 ("npz", "npz_path", "data/raw/arrays.npz")):  # fmt: skip
        value = getattr(data, key)
        if data.source == source and not value:
            raise ConfigError(
                f"{path}: data.source is {source!r} but data.{key} is empty; set it"
                f" (e.g. {key}: {example})"
            )
        if data.source == source:
            _check_inside(path, f"data.{key}", value, value, RAW_DATA_DIR, example)
    if data.shape == "image" and data.source == "csv":
        raise ConfigError(
            f"{path}: data.shape = 'image': a CSV row has no image shape; use data.source: npz"
            f" (x of shape rows x height x width [x channels]) or leave data.shape null"
        )


def _check_inside(path: Path, key: str, value: str, file: str, folder: Path, example: str):
    where = Path(os.path.normpath(file))
    if where.is_absolute() or folder not in where.parents:
        raise ConfigError(
            f"{path}: {key} = {value!r}: put it under {folder}/ and give its path from the"
            f" project root (e.g. {example}), so that DVC reruns the stages when it changes"
        )

"""Read `params.yaml` and validate it once into a `LabConfig` that every stage reads.

Nothing here imports TensorFlow, so a bad edit is reported in well under a second,
before any stage spends time on imports or training.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from pipeline.config.builder_ref import BUILTIN_BUILDERS
from pipeline.config.data_keys import check_data_keys
from pipeline.config.entries import ModelLayers, dense_layer_names, resolve_tuning
from pipeline.config.grid import with_grid_entries
from pipeline.config.rates import resolve_rates
from pipeline.config.schema import BUILDERS_DIR, PRETRAINED_DIR, RAW_DATA_DIR, LabConfig
from pipeline.core.errors import ConfigError


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
        raise ConfigError(f"{path}: {_validation_message(exc)}") from None
    _check_cross_fields(config, path)
    config = with_grid_entries(config, path)
    _check_folds(config, path)
    return config


def _check_folds(config: LabConfig, path: Path) -> None:
    """Folds pool data's training and validation rows: an entry with its own training set
    (a pool prefix) has no place in them."""
    if config.choose.folds is None:
        return
    for name, entry in config.sweep.items():
        if entry.uses_pool:
            key = "train_size" if entry.train_size is not None else "label_noise"
            raise ConfigError(
                f"{path}: choose.folds = {config.choose.folds} with sweep.{name}.{key}: folds are"
                f" cut from data's training and validation rows, so entries with their own"
                f" training set (train_size, label_noise, grid.train_sizes, grid.label_noise)"
                f" are not supported with folds; set choose.folds: null or drop {key}"
            )


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
    "none_required": "can only be null here (this entry trains from scratch); the start model"
    " is model.start_from",
}
# What a pattern-checked key accepts, in words rather than as the regular expression.
_PATTERN_MESSAGES = {
    "model.builder": "must be mlp, cnn, or builders/<file>.py:<function> (a function in a file"
    " under builders/ that returns the unregularized keras.Model)",
    "grid.layers": "must be all, each, or a layer name (letters, digits and _)",
    "grid.prefix": "must be a letter, then up to 15 letters or digits",
    "registry.name": "must be letters, digits, _, - or ., starting with a letter or digit, at"
    " most 256 characters (it becomes models:/<name>@<alias>)",
    "registry.alias": "must be letters, digits, _ or -, at most 255 characters (MLflow's rule)",
}
_NUMERIC_TYPES = {"int_type", "int_parsing", "float_type", "float_parsing", "value_error"}
# Pydantic's wording for a bound ("Input should be greater than or equal to 1") in ours.
_BOUND_MESSAGES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "finite_number": "must be a finite number, not infinity or NaN",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} item(s)",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "string_pattern_mismatch": "has characters that are not allowed here",
}


def _validation_message(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"] if part != "[key]")
    kind = error["type"]
    if kind == "extra_forbidden":
        home = _home_of(key)
        if home:
            return f"unknown key {key!r}; it belongs under its section: write it as {home}"
        return f"unknown key {key!r}; check its spelling (docs/params.md lists them)"
    if kind == "missing":
        return f"missing key {key!r}; add it (see docs/params.md)"
    if "[key]" in error["loc"]:
        return (
            f"sweep entry name {error['input']!r} is not allowed: use letters, digits and"
            f" underscores, starting with a letter (names reach shell commands in dvc.yaml)"
        )
    value = error["input"]
    message = _TYPE_MESSAGES.get(kind) or error["msg"].removeprefix("Value error, ")
    if kind in _BOUND_MESSAGES:
        message = _BOUND_MESSAGES[kind].format(**error.get("ctx", {}))
    if kind == "literal_error":
        message = f"must be one of {error['ctx']['expected']}"
    if kind == "string_pattern_mismatch" and key.rstrip("0123456789.") in _PATTERN_MESSAGES:
        message = _PATTERN_MESSAGES[key.rstrip("0123456789.")]
    if kind in _NUMERIC_TYPES and _has_quoted_number(value):
        message += "; remove the quotes to make it a number"
    elif value is None:
        message += " (an empty value is `null` in YAML)"
    elif isinstance(value, bool) and kind in _NUMERIC_TYPES:
        message += " (`true` and `false` are booleans, not numbers)"
    extra = len(exc.errors()) - 1
    more = f" (and {_count(extra, 'more problem')})" if extra else ""
    return f"{key} = {_yaml(value)}: {message}{more}"


def _home_of(key: str) -> str | None:
    """`base.repeat_seeds` for a misplaced `repeat_seeds` (a key of another section)."""
    name = key.rpartition(".")[2]
    for section, field in LabConfig.model_fields.items():
        inner = getattr(field.annotation, "model_fields", {})
        if name in inner and f"{section}.{name}" != key:
            return f"{section}.{name}"
    return None


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
    for key, example in (("hidden_units", "[256, 256]"), ("activation", "tanh")):
        if config.model.is_mlp and getattr(config.model, key) is None:
            raise ConfigError(
                f"{path}: model.{key} is missing or null: the MLP (model.builder: mlp) needs it,"
                f" e.g. {key}: {example}"
            )
    expected = config.model.n_dense_layers
    for name, entry in config.sweep.items():
        # Other builders' layers are known once the model is built: `train` checks them.
        if not config.model.is_mlp:
            continue
        if isinstance(entry.l2, dict):
            mlp_layers = dense_layer_names(expected - 1)
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
    check_data_keys(config, path)


def _check_own_model_and_data(config: LabConfig, path: Path) -> None:
    """The paths of a user's builder file, image folder or .npz: inside the project, in the
    folders DVC tracks for them, so a change there reruns the stages that read them."""
    data, builder = config.data, config.model.builder
    start = config.model.start_from
    if start is not None and builder != "mlp":
        raise ConfigError(
            f"{path}: model.start_from and model.builder = {builder!r} both give the"
            f" architecture; the start model's file is the network: remove model.builder, or"
            f" set model.start_from: null to build with the builder"
        )
    if start is not None:
        _check_inside(path, "model.start_from", start, start, PRETRAINED_DIR,
                      "pretrained/source.keras")  # fmt: skip
    elif config.model.new_head:
        raise ConfigError(
            f"{path}: model.new_head = true needs a start model; set model.start_from or"
            f" remove new_head"
        )
    # `l2_sp` and `freeze` need a start model; the MLP's entries are otherwise resolved only in
    # `train`, after DVC has removed its outputs.
    for name, entry in config.sweep.items() if start is None else ():
        try:
            resolve_tuning(name, entry, ModelLayers(()))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if builder not in BUILTIN_BUILDERS:
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

"""The sections of `params.yaml` as frozen, typed pydantic models (what a valid file holds)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from pipeline.config.runtime_sections import ChooseConfig, ComputeConfig, RegistryConfig
from pipeline.config.section import SECTION_CONFIG

# Entry names become file names (`metrics/<entry>.json`, `models/<entry>/`) and part of the
# `dvc exp run` commands the report proposes, so only plain identifiers are allowed.
ENTRY_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
EntryName = Annotated[str, Field(pattern=ENTRY_NAME_PATTERN)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)]

# User CSVs live here: `prepare` depends on this folder in dvc.yaml, so editing one reruns it.
RAW_DATA_DIR = Path("data/raw")
# Users' model builders live here: `train` and `evaluate` depend on this folder in dvc.yaml.
BUILDERS_DIR = Path("builders")
# Pretrained models to fine-tune (`model.start_from`): a dependency of the stages that build
# or score models, so replacing a file there retrains.
PRETRAINED_DIR = Path("pretrained")
BUILDER_PATTERN = r"^(mlp|cnn|[A-Za-z0-9_./-]+\.py:[A-Za-z_][A-Za-z0-9_]*)$"

Activation = Literal["tanh", "relu", "sigmoid", "elu", "selu", "gelu", "softplus", "swish"]


class _Section(BaseModel):
    model_config = SECTION_CONFIG




Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]


class BaseConfig(_Section):
    seed: Seed
    # Extra seeds to train every entry with again (initialisation and batch order only:
    # the data split and label noise keep `seed`), for mean +- spread in the report.
    repeat_seeds: list[Seed] = []
    experiment: Annotated[str, Field(min_length=1, max_length=200)]


Rows = Annotated[int, Field(ge=2)]
LabelNoise = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]


class DigitsDemo(_Section):
    """The digits demo's training set: small and noisy, so the MLP memorises it (the
    overfitting L2 is meant to cure). Read only with `data.source: digits`."""

    train_subset: Rows | None = None
    label_noise: LabelNoise = 0.0


class DataConfig(_Section):
    source: Literal["digits", "diabetes", "csv", "images", "npz"]
    csv_path: str | None = None
    target_column: str | None = None
    # auto: a CSV's target of numbers with fractions or many distinct values is a quantity
    # (regression), anything else classes; .npz is classification unless declared; digits
    # and image folders are classification (core/task.py, datasets/targets.py).
    task: Literal["auto", "classification", "regression"] = "auto"
    # A CSV's columns left out of the features (an id, a free-text name).
    drop_columns: list[Annotated[str, Field(min_length=1)]] = []
    # Own data (docs/own-model-and-data.md). `shape`: null keeps the source's own shape
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
    # A user's own data is used whole and uncorrupted unless these are set (never with
    # `source: digits`, whose own settings are `digits:`).
    train_subset: Rows | None = None
    label_noise: LabelNoise | None = None
    scaling: Literal["minmax", "standard"] = "minmax"
    digits: DigitsDemo = DigitsDemo()

    @property
    def effective_train_subset(self) -> int | None:
        """The training rows kept for the selected source (None: all)."""
        return self.digits.train_subset if self.source == "digits" else self.train_subset

    @property
    def effective_label_noise(self) -> float:
        """The share of training labels flipped for the selected source."""
        if self.source == "digits":
            return self.digits.label_noise
        return self.label_noise or 0.0

    def as_trained(self) -> dict:
        """The settings as one flat mapping, demo settings resolved: what a model's
        config.json and its MLflow run record (the same keys whatever the source)."""
        settings = self.model_dump(exclude={"digits"})
        settings["train_subset"] = self.effective_train_subset
        settings["label_noise"] = self.effective_label_noise
        # Left out at their defaults, so that models trained before these keys existed keep
        # their config.json and model key; an auto task is in the prepared data's meta.json,
        # which the key covers.
        if settings["task"] == "auto":
            del settings["task"]
        if not settings["drop_columns"]:
            del settings["drop_columns"]
        return settings


class CnnConfig(_Section):
    """The built-in convnet (`model.builder: cnn`): a Conv2D + 2x2 max-pool per filter count."""

    filters: Annotated[list[Annotated[int, Field(ge=1, le=4096)]], Field(min_length=1)] = [16, 32]
    kernel_size: Annotated[int, Field(ge=1, le=15)] = 3
    dense_units: Annotated[int, Field(ge=0, le=65536)] = 64  # 0: the output layer only
    activation: Activation = "relu"


class ModelConfig(_Section):
    # mlp | cnn | builders/<file>.py:<function> (pipeline/modeling/builders.py)
    builder: Annotated[str, Field(pattern=BUILDER_PATTERN)] = "mlp"
    # The MLP's: required for it (load.py), optional for the other builders.
    hidden_units: (
        Annotated[list[Annotated[int, Field(ge=1, le=65536)]], Field(min_length=1)] | None
    ) = None
    activation: Activation | None = None
    cnn: CnnConfig = CnnConfig()
    # Fine-tuning: a `.keras` file under pretrained/ whose architecture
    # and weights every model starts from (an entry's `start_from: null` trains from scratch).
    start_from: Annotated[str, Field(min_length=1)] | None = None
    # Replace the start model's output layer by a fresh one even when it fits the data.
    new_head: bool = False

    @property
    def is_mlp(self) -> bool:
        """The built-in MLP builds the models (not a start model's file, not a cnn or a
        builder of the user's): its layers are known without Keras."""
        return self.builder == "mlp" and self.start_from is None

    def as_trained(self) -> dict:
        """The settings as a model's config.json and MLflow run record them; the fine-tuning
        keys only when set, so models trained before they existed keep their files."""
        settings = self.model_dump()
        if self.start_from is None:
            del settings["start_from"]
        if not self.new_head:
            del settings["new_head"]
        return settings

    @property
    def n_dense_layers(self) -> int:
        """The MLP's Dense layers, output included."""
        return len(self.hidden_units or ()) + 1


class TrainConfig(_Section):
    learning_rate: Annotated[float, Field(gt=0.0, le=10.0, allow_inf_nan=False)]
    batch_size: Annotated[int, Field(ge=1)]
    epochs: Annotated[int, Field(ge=1)]


class SweepEntry(_Section):
    # One rate, one per regularizable layer in order, or {layer name or glob: rate}.
    l2: float | list[float] | dict[str, float] = 0.0
    # Fine-tuning only: L2 toward the start model's weights, rate * sum((w - w0) ** 2), in
    # the same forms as `l2`; a layer without a starting value (a new head) takes none.
    l2_sp: float | list[float] | dict[str, float] = 0.0
    # Fine-tuning only: layers (names or glob patterns) kept at their starting weights;
    # BatchNormalization layers among them run in inference mode.
    freeze: list[Annotated[str, Field(min_length=1)]] = []
    # Fine-tuning only: null trains this entry from scratch (the start model's architecture,
    # freshly initialised with the entry's seed); absent, it starts from model.start_from.
    start_from: None = None
    # Decoupled weight decay (AdamW): each step shrinks every kernel by
    # learning_rate * weight_decay * w, outside the loss. Biases are never decayed.
    weight_decay: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    # Train on the first `train_size` rows of the nested training pool (datasets/subsets.py) with
    # `label_noise` of them flipped, instead of the split that `data:` describes.
    train_size: Rows | None = None
    label_noise: LabelNoise | None = None

    @property
    def uses_pool(self) -> bool:
        """Trained on a prefix of the nested pool rather than on `data:`'s training split."""
        return self.train_size is not None or self.label_noise is not None

    @property
    def from_scratch(self) -> bool:
        """`start_from: null` written on the entry: no start weights, even when fine-tuning."""
        return "start_from" in self.model_fields_set

    @field_validator("l2", "l2_sp", mode="before")
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
    # Fine-tuning (model.start_from): `l2_sp` rates, L2 toward the start, on the same layers;
    # an entry each (`grid_sp_1e_2_all`), with no `l2`.
    l2_sp: list[float] = []
    # `all`: every Dense layer at the rate; `each`: one entry per layer, that layer alone;
    # a layer name: that layer alone.
    layers: Annotated[list[GridLayers], Field(min_length=1)] = ["all"]
    # null: `data:`'s training split; a number n: the first n rows of the nested pool.
    train_sizes: Annotated[list[Annotated[int, Field(ge=2)] | None], Field(min_length=1)] = [None]
    # null: the data's label noise (on the pool when a size is set); a number: that share flipped.
    label_noise: Annotated[
        list[Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] | None],
        Field(min_length=1),
    ] = [None]
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,15}$")] = "grid"

    @field_validator("rates", "l2_sp", mode="before")
    @classmethod
    def _rates_are_numbers(cls, value: object, info: ValidationInfo) -> object:
        # `dvc exp run -S grid.rates=[0,1e-3]` gives an int 0 beside floats.
        ok = isinstance(value, list) and all(
            isinstance(r, int | float) and not isinstance(r, bool) and math.isfinite(r) and r >= 0
            for r in value
        )
        if not ok:
            raise ValueError(
                f"grid.{info.field_name} must be a list of finite numbers >= 0, e.g. [0, 1e-3]"
            )
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
    choose: ChooseConfig = ChooseConfig()
    compute: ComputeConfig = ComputeConfig()
    registry: RegistryConfig = RegistryConfig()

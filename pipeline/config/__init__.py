"""The sweep's definition: `params.yaml` validated once into frozen, typed config.

`schema`: the sections as pydantic models. `load`: reading and validating the file, one-line
errors. `grid`: a grid expanded into named entries. `entries`: each entry (and each extra
seed) resolved once into an `EntrySpec`/`ModelSpec`. `rates`: an entry's `l2` resolved
against a model's layers. `builder_ref`: `model:` with a user's builder file resolved.
`memory`: what the towers need, refused before training. `data_keys`: the `data:` keys
checked against each other and, in prepare, against the task.
Imports no TensorFlow.
"""

from pipeline.config.builder_ref import BuilderRef
from pipeline.config.entries import EntrySpec, ModelSpec, resolve_entries, resolve_towers
from pipeline.config.load import load_config
from pipeline.config.memory import check_memory
from pipeline.config.schema import (
    BUILDERS_DIR,
    RAW_DATA_DIR,
    CnnConfig,
    ComputeConfig,
    DataConfig,
    LabConfig,
    ModelConfig,
    SweepEntry,
)

__all__ = [
    "BUILDERS_DIR",
    "RAW_DATA_DIR",
    "BuilderRef",
    "CnnConfig",
    "ComputeConfig",
    "DataConfig",
    "EntrySpec",
    "LabConfig",
    "ModelConfig",
    "ModelSpec",
    "SweepEntry",
    "check_memory",
    "load_config",
    "resolve_entries",
    "resolve_towers",
]

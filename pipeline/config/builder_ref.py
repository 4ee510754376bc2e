"""`model:` with its builder resolved once against the project: what builds every model.

A user's builder (`builders/<file>.py:<function>`) is a path relative to the folder that
holds params.yaml; it is resolved here, once per stage, and the reference travels (also to
worker processes and Ray tasks) instead of that folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config.schema import ModelConfig

BUILTIN_BUILDERS = ("mlp", "cnn")


@dataclass(frozen=True)
class BuilderRef:
    model: ModelConfig
    file: Path | None = None  # a user's builder file, absolute; None for `mlp` and `cnn`

    @classmethod
    def of(cls, model: ModelConfig, project_root: Path) -> BuilderRef:
        """`project_root`: the folder that holds params.yaml."""
        if model.builder in BUILTIN_BUILDERS:
            return cls(model)
        return cls(model, project_root.resolve() / model.builder.rpartition(":")[0])

    @classmethod
    def of_params(cls, model: ModelConfig, params: Path) -> BuilderRef:
        return cls.of(model, params.resolve().parent)

    @property
    def is_users(self) -> bool:
        return self.file is not None

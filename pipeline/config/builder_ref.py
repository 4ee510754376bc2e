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
    # Fine-tuning: the start model's `.keras` file (model.start_from), absolute.
    start_file: Path | None = None

    @classmethod
    def of(cls, model: ModelConfig, project_root: Path) -> BuilderRef:
        """`project_root`: the folder that holds params.yaml."""
        root = project_root.resolve()
        start = root / model.start_from if model.start_from is not None else None
        if model.builder in BUILTIN_BUILDERS:
            return cls(model, start_file=start)
        return cls(model, root / model.builder.rpartition(":")[0], start)

    @classmethod
    def of_params(cls, model: ModelConfig, params: Path) -> BuilderRef:
        return cls.of(model, params.resolve().parent)

    @property
    def is_users(self) -> bool:
        return self.file is not None

    @property
    def fine_tunes(self) -> bool:
        """The models are the start model's architecture (model.start_from)."""
        return self.start_file is not None

"""What every section of `params.yaml` is (pipeline/config/schema.py and runtime_sections.py)."""

from __future__ import annotations

from pydantic import ConfigDict

# strict: a quoted "0.01" or a `true` must not silently become a number; frozen: a loaded
# configuration is read, never changed; extra keys are refused with their right place.
SECTION_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True)

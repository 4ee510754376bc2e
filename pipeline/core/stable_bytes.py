"""Zip-based files (`.keras`, `.npz`) whose bytes depend on their content only.

Keras stamps `date_saved` into a `.keras` file and zip entries carry their write time, so
the same model saved twice gives different bytes. DVC hashes the bytes: `dvc.lock` would
change on every run and a fresh clone would never reproduce the committed lock. These
writers drop the clock from both.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path

# The earliest time a zip entry can hold; any fixed value would do.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_KERAS_METADATA = "metadata.json"


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _write_entries(path: Path, entries: Mapping[str, bytes]) -> None:
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(entries):
            archive.writestr(_entry(name), entries[name])
    partial.replace(path)


def save_keras_model(model, path: Path) -> None:
    """`model.save(path)` without the save time: same model, same bytes."""
    # Keras decides the format by the file name, so it writes a real `.keras` file first.
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(entries[_KERAS_METADATA])
    metadata.pop("date_saved", None)
    entries[_KERAS_METADATA] = json.dumps(metadata, sort_keys=True).encode()
    _write_entries(path, entries)


def save_npz(path: Path, arrays: Mapping[str, object]) -> None:
    """`numpy.savez_compressed(path, **arrays)` without the write time in the zip entries."""
    import numpy as np

    entries = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
        entries[f"{name}.npy"] = buffer.getvalue()
    _write_entries(path, entries)

"""Image folders and `.npz` arrays as examples: one array of examples and one of labels.

An image folder has one sub-folder per class (the layout of
`keras.utils.image_dataset_from_directory`); every image is converted to grayscale or RGB and
resized to one size, so mixed sizes and modes are fine. An `.npz` holds `x` (examples, any
shape) and `y` (labels, numbers or text). What cannot be used is refused in one line that
says what to fix. Reading uses Pillow and NumPy only: `prepare` imports no TensorFlow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError

log = logging.getLogger(__name__)

# What keras.utils.image_dataset_from_directory reads; other files (README, .DS_Store) are
# not examples and are skipped.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def load_image_folder(
    folder: Path, size: tuple[int, int], color_mode: str
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images (n, height, width, channels) float32 in 0..255, class codes, class names).

    Classes are the sub-folders in sorted order, as Keras numbers them.
    """
    from PIL import Image, UnidentifiedImageError

    key = f"data.image_dir {folder.name!r}"
    if not folder.is_dir():
        raise DataError(
            f"{key}: no such folder at {folder}; put one sub-folder of images per class "
            f"there and track it with `dvc add`"
        )
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(
            f"{key}: {len(classes)} class folder(s) ({', '.join(classes) or 'none'}); a "
            f"classifier needs at least two: one sub-folder of images per class"
        )
    height, width = size
    mode = {"grayscale": "L", "rgb": "RGB"}[color_mode]
    images, codes, resized = [], [], 0
    for code, name in enumerate(classes):
        files = sorted(
            p
            for p in (folder / name).rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"{key}: class folder {name!r} has no images ({', '.join(IMAGE_SUFFIXES)}); "
                f"add images or remove the folder"
            )
        for file in files:
            try:
                with Image.open(file) as image:
                    image = image.convert(mode)
                    if image.size != (width, height):
                        resized += 1
                        image = image.resize((width, height), Image.Resampling.BILINEAR)
                    images.append(np.asarray(image, dtype=np.float32))
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise DataError(
                    f"{key}: {file.relative_to(folder)} is not a readable image "
                    f"({type(exc).__name__}); replace or delete it"
                ) from None
            codes.append(code)
    x = np.stack(images)
    if x.ndim == 3:
        x = x[..., None]  # grayscale: one channel
    log.info(
        "%s: %d images in %d classes, %s %dx%d (%d resized)",
        folder.name,
        len(codes),
        len(classes),
        color_mode,
        height,
        width,
        resized,
    )
    return x, np.asarray(codes, dtype=np.int64), tuple(classes)


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(`x` as float32, `y` as stored) from an `.npz` file."""
    key = f"data.npz_path {path.name!r}"
    if not path.is_file():
        raise DataError(
            f"{key}: no such file at {path}; save np.savez('{path.name}', x=examples, "
            f"y=labels) under data/raw/ and track it with `dvc add`"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{key}: not a readable .npz ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            f"save it with np.savez(path, x=examples, y=labels) (no object arrays)"
        ) from None
    missing = [name for name in ("x", "y") if name not in arrays]
    if missing:
        raise DataError(
            f"{key}: no array {' or '.join(map(repr, missing))} (it has "
            f"{', '.join(arrays) or 'none'}); save it with np.savez(path, x=examples, y=labels)"
        )
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 0 or y.ndim != 1 or len(x) != len(y):
        raise DataError(
            f"{key}: x has shape {x.shape} and y {y.shape}; y needs one label per example of x "
            f"(x: examples x features or examples x height x width [x channels], y: examples)"
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{key}: x holds {x.dtype} values; it must hold numbers")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{key}: x has NaN or infinite values; replace them with numbers")
    if x.ndim == 1:
        x = x[:, None]  # one feature per example
    return x, y

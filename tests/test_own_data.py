"""Image and array data: digits as 8x8x1 images, a folder of PNGs (one sub-folder per class)
and an .npz. Splits, label noise, scaling and the training subset apply to every source;
what cannot be used is a one-line error naming the key, the value and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.config import load_config
from pipeline.core.contracts import read_meta
from pipeline.core.errors import ConfigError, DataError
from pipeline.datasets import prepared
from pipeline.prepare import prepare
from tests.support.params import tiny_params, write_yaml


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target


def _prepare(tmp_path: Path, **data_keys) -> dict[str, prepared.Split]:
    params = tiny_params()
    params["data"].update(data_keys)
    write_yaml(tmp_path / "params.yaml", params)
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    return {name: prepared.read_split(tmp_path / "prepared", name) for name in prepared.SPLITS}


def _write_pngs(folder: Path, per_class: int = 30, classes=range(10)) -> None:
    """Digits as 8-bit PNGs, one sub-folder per class; every third one 16x16 (resized back)."""
    images, labels = _digits()
    for label in classes:
        (folder / f"digit_{label}").mkdir(parents=True)
        for i, image in enumerate(images[labels == label][:per_class]):
            pixels = Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L")
            if i % 3 == 0:
                pixels = pixels.resize((16, 16))
            pixels.save(folder / f"digit_{label}" / f"{i}.png")
    (folder / "README.txt").write_text("not an image, not a class")
    (folder / f"digit_{classes[0]}" / "notes.txt").write_text("skipped: not an image")


def test_digits_as_images_are_the_flat_digits_reshaped(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "images").mkdir()
    flat = _prepare(tmp_path / "flat")
    images = _prepare(tmp_path / "images", shape="image")
    assert read_meta(tmp_path / "images" / "prepared").input_shape == (8, 8, 1)
    assert read_meta(tmp_path / "flat" / "prepared").input_shape == (64,)
    for name in prepared.SPLITS:
        assert images[name].features.shape[1:] == (8, 8, 1)
        np.testing.assert_array_equal(
            images[name].features.reshape(len(images[name].labels), -1), flat[name].features
        )
        np.testing.assert_array_equal(images[name].labels, flat[name].labels)


def test_an_image_folder_is_read_resized_split_and_noised(tmp_path):
    _write_pngs(tmp_path / "data" / "raw" / "pngs")
    splits = _prepare(
        tmp_path,
        source="images",
        image_dir="data/raw/pngs",
        image_size=[8, 8],
        train_subset=80,  # own data: subset and noise only when asked for
        label_noise=0.2,
    )
    meta = json.loads((tmp_path / "prepared" / "meta.json").read_text())
    assert meta["input_shape"] == [8, 8, 1]
    assert meta["class_names"] == [f"digit_{i}" for i in range(10)]
    assert sum(meta["rows"].values()) < 300 and meta["rows"]["train"] == 80
    assert meta["train_labels_flipped"] == 16  # label_noise 0.2 of the 80 training rows
    train = splits["train"]
    assert train.features.shape == (80, 8, 8, 1)
    assert train.features.min() == 0.0 and train.features.max() == 1.0  # minmax on train


def test_an_image_folder_in_rgb_at_another_size(tmp_path):
    # 18 training rows: at least one batch of the tiny params' 16.
    _write_pngs(tmp_path / "data" / "raw" / "pngs", per_class=10, classes=[0, 1, 2])
    splits = _prepare(
        tmp_path,
        source="images",
        image_dir="data/raw/pngs",
        image_size=[12, 10],
        color_mode="rgb",
        train_subset=None,
        test_fraction=0.2,
        val_fraction=0.2,
    )
    assert splits["test"].features.shape[1:] == (12, 10, 3)


def test_an_npz_with_text_labels_in_its_own_shape_or_as_images(tmp_path):
    images, labels = _digits()
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])[labels]  # fmt: skip
    for root in ("own", "shaped"):
        (tmp_path / root / "data" / "raw").mkdir(parents=True)
        np.savez(tmp_path / root / "data" / "raw" / "digits.npz", x=images, y=names)
    own = _prepare(tmp_path / "own", source="npz", npz_path="data/raw/digits.npz")
    assert own["train"].features.shape == (1077, 8, 8)  # own data: every training row
    shaped = _prepare(
        tmp_path / "shaped", source="npz", npz_path="data/raw/digits.npz", shape="image"
    )
    assert shaped["val"].features.shape[1:] == (8, 8, 1)
    meta = read_meta(tmp_path / "shaped" / "prepared")
    assert meta.class_names[0] == "eight"  # text labels, sorted
    assert meta.train_labels_flipped == 0  # own data: labels as given unless asked


@pytest.fixture
def in_project(tmp_path, monkeypatch):
    """Relative paths (data/raw/...) resolve against tmp_path, as from a project root."""
    (tmp_path / "data" / "raw").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _bad_folder(root: Path, case: str) -> None:
    folder = root / "data" / "raw" / "pngs"
    if case == "one class":
        _write_pngs(folder, per_class=5, classes=[3])
    elif case == "empty class":
        _write_pngs(folder, per_class=5, classes=[0, 1])
        (folder / "digit_9").mkdir()
    elif case == "unreadable":
        _write_pngs(folder, per_class=5, classes=[0, 1])
        (folder / "digit_1" / "broken.png").write_bytes(b"not a png at all")
    elif case == "too few":
        _write_pngs(folder, per_class=5, classes=[0, 1])
        for file in list((folder / "digit_1").glob("*.png"))[2:]:
            file.unlink()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", r"data.image_dir 'pngs': no such folder at .*; put one sub-folder"),
        ("one class", r"data.image_dir 'pngs': 1 class folder\(s\) \(digit_3\); a classifier "
                      r"needs at least two"),
        ("empty class", r"data.image_dir 'pngs': class folder 'digit_9' has no images .*; add "
                        r"images or remove the folder"),
        ("unreadable", r"data.image_dir 'pngs': digit_1/broken.png is not a readable image "
                       r"\(UnidentifiedImageError\); replace or delete it"),
        ("too few", r"pngs: class folder 'digit_1' has only 2 example\(s\); every class needs "
                    r"at least 3"),
    ],
)  # fmt: skip
def test_a_bad_image_folder_is_a_one_line_error(in_project, case, message):
    _bad_folder(in_project, case)
    params = tiny_params()
    params["data"].update(source="images", image_dir="data/raw/pngs", image_size=[8, 8])
    write_yaml(in_project / "params.yaml", params)
    with pytest.raises(DataError, match=message) as info:
        prepare(in_project / "params.yaml", in_project / "prepared")
    assert "\n" not in str(info.value)
    assert not (in_project / "prepared").exists()  # nothing written


def _npz(root: Path, case: str) -> None:
    path = root / "data" / "raw" / "a.npz"
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    if case == "no y":
        np.savez(path, x=x, labels=y)
    elif case == "no x or y":
        np.savez(path, features=x)
    elif case == "lengths":
        np.savez(path, x=x, y=y[:30])
    elif case == "not npz":
        path.write_text("x,y\n1,2\n")
    elif case == "nan":
        x[3, 1] = np.nan
        np.savez(path, x=x, y=y)
    elif case == "image shape":
        np.savez(path, x=x, y=y)


@pytest.mark.parametrize(
    ("case", "message", "shape"),
    [
        ("no y", r"data.npz_path 'a.npz': no array 'y' \(it has x, labels\); save it with "
                 r"np.savez\(path, x=examples, y=labels\)", None),
        ("no x or y", r"no array 'x' or 'y' \(it has features\)", None),
        ("lengths", r"x has shape \(40, 3\) and y \(30,\); y needs one label per example", None),
        ("not npz", r"data.npz_path 'a.npz': not a readable .npz", None),
        ("nan", r"x has NaN or infinite values", None),
        ("image shape", r"data.shape = 'image': a.npz's x has shape \(40, 3\)", "image"),
    ],
)  # fmt: skip
def test_a_bad_npz_is_a_one_line_error(in_project, case, message, shape):
    _npz(in_project, case)
    params = tiny_params()
    params["data"].update(source="npz", npz_path="data/raw/a.npz", shape=shape, train_subset=None)
    write_yaml(in_project / "params.yaml", params)
    with pytest.raises(DataError, match=message) as info:
        prepare(in_project / "params.yaml", in_project / "prepared")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data": {"source": "npz"}}, r"data.source is 'npz' but data.npz_path is empty"),
        ({"data": {"source": "images", "image_dir": "/tmp/pngs"}},
         r"data.image_dir = '/tmp/pngs': put it under data/raw/"),
        ({"data": {"source": "images", "image_dir": "data/raw/p", "image_size": [8]}},
         r"data.image_size"),
        ({"data": {"shape": "image", "source": "csv", "csv_path": "data/raw/a.csv",
                   "target_column": "y"}}, r"a CSV row has no image shape"),
        ({"model": {"builder": "models/net.py:build"}},
         r"model.builder = 'models/net.py:build': put it under builders/"),
        ({"model": {"builder": "net"}}, r'model.builder = "net": must be mlp, cnn, or builders/'),
        ({"model": {"cnn": {"filters": []}}}, r"model.cnn.filters"),
        ({"sweep": {"a": {"l2": {"hidden_*": 0.1, "hidden_2": 0.2}}}},
         r"sweep.a.l2: layer 'hidden_2' is matched by both 'hidden_\*' and 'hidden_2'"),
        ({"sweep": {"a": {"l2": {"conv*": 0.1}}}},
         r"sweep.a.l2: 'conv\*' matches no regularizable layer; the layers are hidden_1, "
         r"hidden_2, output"),
        ({"sweep": {"a": {"l2": {"output": -1.0}}}}, r"sweep.a.l2 = .*finite number >= 0"),
    ],
)  # fmt: skip
def test_bad_params_for_own_models_and_data(tmp_path, changes, message):
    params = tiny_params()
    for section, keys in changes.items():
        if section == "sweep":
            params["sweep"] = keys
        else:
            params[section].update(keys)
    write_yaml(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(tmp_path / "params.yaml")
    assert "\n" not in str(info.value)


def test_rates_by_glob_resolve_for_the_mlp_in_params(tmp_path):
    from pipeline.config.entries import resolve_entries

    params = tiny_params()
    params["sweep"] = {"hidden": {"l2": {"hidden_*": 0.01}}, "out": {"l2": {"output": 0.1}}}
    write_yaml(tmp_path / "params.yaml", params)
    entries = resolve_entries(load_config(tmp_path / "params.yaml"))
    assert [e.layer_rates for e in entries] == [
        (("hidden_1", 0.01), ("hidden_2", 0.01), ("output", 0.0)),
        (("hidden_1", 0.0), ("hidden_2", 0.0), ("output", 0.1)),
    ]

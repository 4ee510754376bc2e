"""The chosen model, ready to use: raw rows through `Predictor` and through the packaged
MLflow model give the lab's own evaluation of that model, labels exactly and probabilities
bit for bit; the package's bytes depend only on its inputs; its code and a builder's custom
layers travel with it."""

from __future__ import annotations

import pickle
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.preparation import Preparation, read_preparation
from tests.support.params import VENV_BIN, tiny_params
from tests.support.tables import (
    TARGET,
    mixed_params,
    mixed_table,
    split_rows,
    trained_lab,
    write_table,
)


@dataclass(frozen=True)
class Lab:
    root: Path
    keras_file: Path
    preparation: Preparation
    val_rows: object  # the raw rows of the validation split, as a user would send them

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"


def _digits_lab(root: Path) -> Lab:
    from pipeline.config import load_config
    from pipeline.datasets import load_dataset

    keras_file = trained_lab(root, tiny_params())
    digits = load_dataset(load_config(root / "params.yaml").data, project_root=root)
    rows = split_rows(root, len(digits.labels))["val"]
    return Lab(root, keras_file, read_preparation(root / "prepared"), digits.features[rows])


def _table_lab(root: Path, regression: bool) -> Lab:
    frame = mixed_table(regression=regression)
    write_table(root, frame, "mixed.csv")
    keras_file = trained_lab(root, mixed_params("mixed.csv"))
    rows = split_rows(root, len(frame))["val"]
    # As a user sends them: another column order, no target, the id column still in.
    raw = frame.drop(columns=[TARGET]).iloc[rows][["wet", "count", "name", "colour", "width"]]
    return Lab(root, keras_file, read_preparation(root / "prepared"), raw)


@pytest.fixture(scope="module")
def labs(tensorflow, tmp_path_factory) -> dict[str, Lab]:
    folder = tmp_path_factory.mktemp("serving")
    return {
        "digits": _digits_lab(folder / "digits"),
        "text labels": _table_lab(folder / "mixed", regression=False),
        "regression": _table_lab(folder / "quantity", regression=True),
    }


def _predictor(lab: Lab):
    from pipeline.serving.predictor import Predictor, load_keras_model

    return Predictor(load_keras_model(lab.keras_file), lab.preparation)


def _lab_model(lab: Lab):
    """The model as the lab's evaluate stage loads it."""
    import keras

    return keras.saving.load_model(lab.keras_file, safe_mode=True)


@pytest.mark.parametrize("name", ["digits", "text labels"])
def test_a_classifiers_labels_are_the_labs_evaluation_of_the_same_rows(labs, name):
    import keras

    from pipeline.datasets import prepared
    from pipeline.modeling.metrics import predicted_classes

    lab = labs[name]
    val = prepared.read_split(lab.prepared, "val")
    model = _lab_model(lab)
    classes = predicted_classes(model, val)
    predicted = _predictor(lab).predict(lab.val_rows)
    assert list(predicted["prediction"]) == [lab.preparation.labels[c] for c in classes]
    assert len(set(classes)) > 1  # a model that learned something, not one class
    probabilities = keras.ops.convert_to_numpy(model(val.features, training=False))
    served = predicted.drop(columns="prediction").to_numpy()
    assert served.dtype == np.float32
    # The same rows in one call of the same weights: the same bits.
    assert np.array_equal(served.view(np.uint32), probabilities.view(np.uint32))
    names = [f"probability_{label}" for label in lab.preparation.labels]
    assert list(predicted.columns) == ["prediction", *names]
    # The user's labels as they were: digits' numbers stay numbers, text stays text.
    assert {type(label) for label in predicted["prediction"].tolist()} == (
        {int} if name == "digits" else {str}
    )


def test_a_regressions_values_are_the_labs_evaluation_in_the_targets_units(labs):
    from pipeline.core.contracts import read_meta
    from pipeline.datasets import prepared
    from pipeline.modeling.metrics import predicted_values

    lab = labs["regression"]
    val = prepared.read_split(lab.prepared, "val")
    expected = predicted_values(_lab_model(lab), val, read_meta(lab.prepared))
    predicted = _predictor(lab).predict(lab.val_rows)
    assert list(predicted.columns) == ["prediction"]
    assert predicted["prediction"].dtype == np.float64
    assert np.array_equal(predicted["prediction"].to_numpy(), expected)


def _package(lab: Lab, out: Path, **extra) -> Path:
    from pipeline.serving.package import package_model

    package_model(lab.keras_file, lab.prepared / "preparation.json", out, **extra)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_packaging_twice_gives_the_same_bytes_and_nothing_from_the_machine(labs, tmp_path):
    lab = labs["text labels"]
    metadata = {"entry": "l2_1e_2", "figure": 0.125}
    first = _files(_package(lab, tmp_path / "one", metadata=metadata))
    second = _files(_package(lab, tmp_path / "two", metadata=metadata))
    assert first == second
    assert not any("__pycache__" in name for name in first)
    code = {name.removeprefix("code/pipeline/") for name in first if name.startswith("code/")}
    assert code == {
        "__init__.py", "core/__init__.py", "core/errors.py", "core/preparation.py",
        "core/runtime.py", "core/task.py", "serving/__init__.py", "serving/model.py",
        "serving/predictor.py",
    }  # fmt: skip
    mlmodel = first["MLmodel"].decode()
    for unstable in ("utc_time_created", "model_uuid", "run_id", str(tmp_path), str(lab.root)):
        assert unstable not in mlmodel
    # Nothing of this machine: not its Python's patch version, not its pip's.
    texts = [data.decode() for name, data in first.items() if not name.startswith("artifacts")]
    assert not any(platform.python_version() in text for text in texts)
    assert "python: '3.11'" in first["python_env.yaml"].decode()
    assert "entry: l2_1e_2" in mlmodel
    requirements = first["requirements.txt"].decode().split("\n")
    assert {line.split("==")[0] for line in requirements} == {
        "mlflow", "keras", "tensorflow", "numpy", "pandas",
    }  # fmt: skip
    assert all("==" in line for line in requirements)


def test_packaging_replaces_an_earlier_folder_whole(labs, tmp_path):
    out = tmp_path / "chosen"
    _package(labs["digits"], out)
    _package(labs["text labels"], out)
    assert not (tmp_path / "chosen.partial").exists() and not (tmp_path / "chosen.old").exists()
    assert read_preparation(out / "artifacts").labels == ("high", "low", "mid")


def test_packaging_a_missing_file_is_one_line_and_leaves_the_earlier_folder(labs, tmp_path):
    from pipeline.core.errors import DataError
    from pipeline.serving.package import package_model

    lab = labs["digits"]
    out = _package(lab, tmp_path / "chosen")
    earlier = _files(out)
    with pytest.raises(DataError, match=r"gone\.keras: no such file to package"):
        package_model(tmp_path / "gone.keras", lab.prepared / "preparation.json", out)
    assert _files(out) == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chosen"]


@pytest.mark.parametrize("name", ["text labels", "regression", "digits"])
def test_the_packaged_model_predicts_what_the_predictor_predicts(labs, tmp_path, name):
    import mlflow.pyfunc

    lab = labs[name]
    loaded = mlflow.pyfunc.load_model(str(_package(lab, tmp_path / "chosen")))
    expected = _predictor(lab).predict(lab.val_rows)
    pd.testing.assert_frame_equal(loaded.predict(lab.val_rows), expected, check_exact=True)


def test_the_packaged_model_refuses_a_missing_column_in_one_line(labs, tmp_path):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    lab = labs["text labels"]
    loaded = mlflow.pyfunc.load_model(str(_package(lab, tmp_path / "chosen")))
    with pytest.raises(MlflowException) as caught:
        loaded.predict(lab.val_rows.drop(columns=["colour"]))
    assert "column 'colour' is missing" in caught.value.message
    assert "\n" not in caught.value.message


CUSTOM_BUILDER = '''
import keras


@keras.saving.register_keras_serializable(package="custom")
class Doubled(keras.layers.Layer):
    """A custom layer: Keras knows it only once this file is imported."""

    def call(self, x):
        return x * 2.0


def doubled_mlp(input_shape, n_classes):
    inputs = keras.Input(shape=input_shape)
    x = Doubled(name="doubled")(inputs)
    x = keras.layers.Dense(16, activation="tanh", name="hidden")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs)
'''


def _custom_layer_package(lab: Lab, root: Path) -> Path:
    """A model built by a builder file with a custom layer, imported as the lab's stages
    import it, saved, and packaged with that file into `root/model`."""
    import keras

    from pipeline.config.builder_ref import BuilderRef
    from pipeline.config.schema import ModelConfig
    from pipeline.modeling.builders import user_builder
    from pipeline.serving.package import package_model

    builder_file = root / "builders" / "custom.py"
    builder_file.parent.mkdir(parents=True)
    builder_file.write_text(CUSTOM_BUILDER)
    build = user_builder(BuilderRef.of(ModelConfig(builder="builders/custom.py:doubled_mlp"), root))
    keras.utils.set_random_seed(3)
    model = build(lab.preparation.input_shape, len(lab.preparation.labels))
    model.save(root / "custom.keras")
    package_model(root / "custom.keras", lab.prepared / "preparation.json", root / "model",
                  builder_file)  # fmt: skip
    return root / "model"


LOAD_AND_PREDICT = """
import pickle, sys
from pathlib import Path
import mlflow.pyfunc

for folder in sys.argv[1:]:
    rows = pickle.loads(Path(folder, "rows.pickle").read_bytes())
    predictions = mlflow.pyfunc.load_model(str(Path(folder, "model"))).predict(rows)
    predictions.to_pickle(Path(folder, "predictions.pickle"))
import pipeline.serving.model
print(pipeline.serving.model.__file__)
"""


@pytest.mark.slow  # a fresh process that imports TensorFlow
def test_a_fresh_process_elsewhere_loads_the_folder_with_its_code_and_layers(labs, tmp_path):
    from pipeline.serving.predictor import Predictor, load_keras_model

    table, digits = labs["text labels"], labs["digits"]
    (tmp_path / "custom").mkdir()
    packaged = {
        "table": _package(table, tmp_path / "table" / "model"),
        "custom": _custom_layer_package(digits, tmp_path / "custom"),
    }
    expected = {  # in this process, which imported the builder's file already
        "table": _predictor(table).predict(table.val_rows),
        "custom": Predictor(
            load_keras_model(tmp_path / "custom" / "custom.keras"), digits.preparation
        ).predict(digits.val_rows),
    }
    for name, lab in (("table", table), ("custom", digits)):
        packaged[name].parent.joinpath("rows.pickle").write_bytes(pickle.dumps(lab.val_rows))
    before = {name: _files(folder) for name, folder in packaged.items()}
    elsewhere = tmp_path / "elsewhere"  # not the project: the code must come from the folder
    elsewhere.mkdir()
    (elsewhere / "load.py").write_text(LOAD_AND_PREDICT)
    folders = [str(folder.parent) for folder in packaged.values()]
    done = subprocess.run(
        [str(VENV_BIN / "python"), "load.py", *folders],
        cwd=elsewhere, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(packaged["table"] / "code/pipeline/serving/model.py")
    for name, folder in packaged.items():
        served = pd.read_pickle(folder.parent / "predictions.pickle")
        pd.testing.assert_frame_equal(served, expected[name], check_exact=True)
        # Loading wrote nothing into the folder (a DVC output): no __pycache__.
        assert _files(folder) == before[name]

"""`python -m pipeline.predict`: a user's CSV (or arrays) in, predictions out, through the
packaged model or a sweep entry's; what it cannot take is refused in one line naming the
column and the fix, with a non-zero exit and no output file (an earlier one untouched)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.preparation import read_preparation
from pipeline.predict import default_model_uri, main
from tests.support.params import ROOT, VENV_BIN, tiny_params, write_yaml
from tests.support.tables import (
    ID_COLUMN,
    TARGET,
    mixed_params,
    mixed_table,
    trained_lab,
    write_table,
)

EARLIER = "prediction\nfrom an earlier run\n"


@pytest.fixture(scope="module")
def lab(tensorflow, tmp_path_factory) -> Path:
    """A table's lab: params.yaml, prepared/, models/best/model.keras, its package in
    chosen/, and new rows (all but the target) in new.csv."""
    from pipeline.serving.package import package_model

    root = tmp_path_factory.mktemp("predict")
    frame = mixed_table()
    write_table(root, frame, "mixed.csv")
    keras_file = trained_lab(root, mixed_params("mixed.csv"))
    (root / "models" / "best").mkdir(parents=True)
    shutil.copyfile(keras_file, root / "models" / "best" / "model.keras")
    package_model(keras_file, root / "prepared" / "preparation.json", root / "chosen")
    frame.drop(columns=[TARGET]).iloc[:40].to_csv(root / "new.csv", index=False)
    return root


def _run(lab: Path, *args: str) -> None:
    main([*args, "--params", str(lab / "params.yaml"), "--prepared", str(lab / "prepared"),
          "--models", str(lab / "models")])  # fmt: skip


def _expected(lab: Path, rows: pd.DataFrame) -> pd.DataFrame:
    from pipeline.serving.predictor import Predictor, load_keras_model

    model = load_keras_model(lab / "models" / "best" / "model.keras")
    return Predictor(model, read_preparation(lab / "prepared")).predict(rows)


def _read_output(path: Path) -> pd.DataFrame:
    """The CSV as written, probabilities back in float32 (their text round-trips)."""
    frame = pd.read_csv(path)
    probabilities = [c for c in frame.columns if c.startswith("probability_")]
    return frame.astype(dict.fromkeys(probabilities, np.float32))


@pytest.mark.parametrize("source", ["--model", "--entry"])
def test_predictions_are_the_models_on_the_users_rows(lab, tmp_path, source):
    output = tmp_path / "out" / "predictions.csv"
    model = str(lab / "chosen") if source == "--model" else "best"
    _run(lab, "--input", str(lab / "new.csv"), "--output", str(output), source, model)
    expected = _expected(lab, pd.read_csv(lab / "new.csv"))
    written = _read_output(output)
    assert list(written["prediction"]) == list(expected["prediction"])
    pd.testing.assert_frame_equal(written, expected, check_exact=True, check_dtype=False)
    assert [p.name for p in output.parent.iterdir()] == ["predictions.csv"]


def test_an_array_sources_examples_come_as_npy_or_npz(tensorflow, tmp_path, capsys):
    from sklearn.datasets import load_digits

    from pipeline.serving.package import package_model

    keras_file = trained_lab(tmp_path / "digits", tiny_params(), epochs=1)
    package_model(keras_file, tmp_path / "digits" / "prepared" / "preparation.json",
                  tmp_path / "chosen")  # fmt: skip
    images = load_digits().images[:12]  # (12, 8, 8): taken flattened, as prepare takes them
    np.save(tmp_path / "new.npy", images)
    main(["--input", str(tmp_path / "new.npy"), "--output", str(tmp_path / "out.csv"),
          "--model", str(tmp_path / "chosen")])  # fmt: skip
    written = _read_output(tmp_path / "out.csv")
    assert written["prediction"].dtype == np.int64 and len(written) == 12
    assert list(written.columns[1:]) == [f"probability_{d}" for d in range(10)]
    np.savez(tmp_path / "new.npz", images=images)
    main(["--input", str(tmp_path / "new.npz"), "--output", str(tmp_path / "from_npz.csv"),
          "--model", str(tmp_path / "chosen")])  # fmt: skip
    assert (tmp_path / "from_npz.csv").read_bytes() == (tmp_path / "out.csv").read_bytes()
    np.savez(tmp_path / "two.npz", images=images, labels=np.arange(12))
    with pytest.raises(SystemExit):
        main(["--input", str(tmp_path / "two.npz"), "--output", str(tmp_path / "two.csv"),
              "--model", str(tmp_path / "chosen")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert err[:2] == [f"[predict] 12 rows predicted by {tmp_path / 'chosen'} -> {tmp_path / name}"
                       for name in ("out.csv", "from_npz.csv")]  # fmt: skip
    assert err[2:] == [
        "error: predict: two.npz holds 2 arrays (images, labels); save the examples to predict"
        " as its only array"
    ]
    assert not (tmp_path / "two.csv").exists()


def test_the_default_model_is_the_registered_chosen_one(tmp_path):
    assert default_model_uri(ROOT / "params.yaml") == "models:/l2-lab@chosen"
    params = tiny_params()
    params["registry"] = {"name": "digits-mlp", "alias": "champion"}
    write_yaml(tmp_path / "params.yaml", params)
    assert default_model_uri(tmp_path / "params.yaml") == "models:/digits-mlp@champion"


def _rows(lab: Path) -> pd.DataFrame:
    return pd.read_csv(lab / "new.csv")


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _first(values, new):
    return [new, *list(values)[1:]]


# case: (what to write at the input path, the message's start, or what it must name)
BAD_INPUT = {
    "missing column": (
        lambda lab, p: _write(p, _rows(lab).drop(columns=["count"])),
        "column 'count' is missing"),
    "unknown extra column": (
        lambda lab, p: _write(p, _rows(lab).assign(height=1.5)),
        "column 'height' was not in the training table; remove it"),
    "text in a numeric column": (
        lambda lab, p: _write(p, _rows(lab).assign(width=_first(_rows(lab)["width"], "wide"))),
        "column 'width' holds 'wide', not a number"),
    "empty cell": (
        lambda lab, p: _write(p, _rows(lab).assign(count=_first(_rows(lab)["count"], None))),
        "column 'count' has an empty cell (row 1)"),
    "unseen category": (
        lambda lab, p: _write(p, _rows(lab).assign(colour=_first(_rows(lab)["colour"], "teal"))),
        "column 'colour' has 'teal', a category training never saw; use one of blue, green"),
    "empty file": (
        lambda lab, p: _text(p, ""),
        "new.csv: the file is empty; give a header and at least one row"),
    "header only": (
        lambda lab, p: _write(p, _rows(lab).iloc[:0]),
        "no rows to predict; give a header and at least one row"),
    "unreadable file": (
        lambda lab, p: _text(p, "width,colour\n1,red\n2,red,3,4\n"),
        "new.csv: not a readable CSV"),
    "no such file": (lambda lab, p: p, "no such file"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_line_a_non_zero_exit_and_no_output(lab, tmp_path, capsys, case):
    make, message = BAD_INPUT[case]
    new = make(lab, tmp_path / "new.csv")
    output = tmp_path / "predictions.csv"
    output.write_text(EARLIER)
    with pytest.raises(SystemExit) as exited:
        _run(lab, "--input", str(new), "--output", str(output), "--model", str(lab / "chosen"))
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: predict: "), err
    assert message in err[0]
    assert output.read_text() == EARLIER
    left = {"predictions.csv", new.name} if new.exists() else {"predictions.csv"}
    assert {p.name for p in tmp_path.iterdir()} == left  # no partial file beside it


@pytest.mark.parametrize(
    "model, store, message",
    [
        ("models:/l2-lab@chosen", "", "model 'models:/l2-lab@chosen': no MLflow store at"),
        ("models:/l2-lab@chosen", "store.db", "model 'models:/l2-lab@chosen' cannot be loaded"),
        ("no-such-folder", "", "model 'no-such-folder' is not a folder"),
        ("new.csv", "", "model 'new.csv' is not a folder"),
        ("empty", "", "model 'empty' cannot be loaded"),
        ("--entry", "", "--entry nothing: no model at"),
    ],
)
def test_a_model_that_does_not_resolve_is_one_line(lab, tmp_path, capsys, monkeypatch, model,
                                                   store, message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "new.csv").write_bytes((lab / "new.csv").read_bytes())
    (tmp_path / "empty").mkdir()
    if store:  # a store without that registered model
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / store}")
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    source = ["--entry", "nothing"] if model == "--entry" else ["--model", model]
    with pytest.raises(SystemExit) as exited:
        _run(lab, "--input", "new.csv", "--output", "out.csv", *source)
    assert exited.value.code == 2
    # MLflow itself logs that it creates a new store's tables; the refusal is one line.
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], errors
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"new.csv", "empty", store} - {""})


@pytest.mark.slow  # a process of its own, which imports TensorFlow
def test_the_command_refuses_a_missing_column_in_one_line(lab, tmp_path):
    new = _write(tmp_path / "new.csv", _rows(lab).drop(columns=[ID_COLUMN, "wet"]))
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "pipeline.predict", "--input", str(new),
         "--output", str(tmp_path / "predictions.csv"), "--model", str(lab / "chosen")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: predict: column 'wet' is missing"), done.stderr[-2000:]
    assert not (tmp_path / "predictions.csv").exists()

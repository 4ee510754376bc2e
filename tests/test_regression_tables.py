"""The regression tables that ship offline (benchmarks/regression_tables.py) and the
scikit-learn reference on prepared rows (benchmarks/regression_reference.py): the CSVs as a
user brings them, written without the network; the reference's figures in the target's units,
checked against the same fits on the raw target."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor

from benchmarks import regression_tables
from benchmarks.regression_reference import (
    FOLDS,
    RIDGE_ALPHAS,
    MlpSettings,
    reference_figures,
)
from pipeline.config import load_config
from pipeline.core.contracts import PreparedMeta, write_meta
from pipeline.core.errors import DataError
from pipeline.datasets.prepared import Split, write_rows
from tests.support.params import ROOT, tiny_params, write_yaml

# rows, rows without a missing value (what the lab keeps), columns
EXPECTED = {
    "diabetes": (442, 442, ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
                            "target"]),
    "penguins": (344, 333, ["species", "island", "bill_length_mm", "bill_depth_mm",
                            "flipper_length_mm", "body_mass_g", "sex", "year"]),
    "cars": (406, 392, ["Name", "Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower",
                        "Weight_in_lbs", "Acceleration", "Year", "Origin"]),
}  # fmt: skip
MAX_CATEGORIES = 20  # docs/own-data.md: more distinct numbers than this is a quantity


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("the network is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_the_tables_are_written_offline_as_csvs_with_cards_and_params_keys(
    tmp_path, monkeypatch, capsys, no_network
):
    monkeypatch.chdir(tmp_path)
    regression_tables.main(["write", "data/raw"])
    sections = capsys.readouterr().out.strip().split("\n\n")
    printed = [YAML(typ="safe", pure=True).load(section)["data"] for section in sections]
    assert [keys["csv_path"] for keys in printed] == [
        f"data/raw/{name}.csv" for name in EXPECTED
    ]
    for keys, (name, (rows, complete, columns)) in zip(printed, EXPECTED.items(), strict=True):
        frame = pd.read_csv(tmp_path / keys["csv_path"])
        assert (len(frame), list(frame.columns)) == (rows, columns), name
        card = (tmp_path / "data" / "raw" / f"{name}.md").read_text()
        assert f"- rows: {rows}, {complete} with no missing value" in card
        assert set(keys) <= {"source", "csv_path", "target_column", "drop_columns"}
        assert keys["source"] == "csv"
        target = frame[keys["target_column"]].dropna()
        # A quantity by the lab's auto rule: fractions, or more distinct numbers than classes.
        assert (target % 1 != 0).any() or target.nunique() > MAX_CATEGORIES, name
        assert set(keys.get("drop_columns", [])) <= set(frame.columns) - {target.name}
        # Each table's keys, and only those, on the lab's default params: a valid config.
        params = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
        params["data"].update(keys)
        write_yaml(tmp_path / "params.yaml", params)
        assert load_config(tmp_path / "params.yaml").data.target_column == target.name


def test_cars_model_year_is_a_number_and_penguins_keep_their_missing_values(no_network):
    cars = regression_tables._cars()
    assert cars["Year"].dtype.kind == "i"
    assert (cars["Year"].min(), cars["Year"].max()) == (1970, 1982)
    penguins = regression_tables._penguins()
    # Left for the lab to drop and say so, as it does with any user's table.
    assert penguins["body_mass_g"].isna().sum() == 2
    assert penguins["sex"].isna().sum() == 11


# --- the reference ---------------------------------------------------------------------------

TINY_MLP = MlpSettings(hidden_units=(8,), activation="tanh", learning_rate=0.01, batch_size=16,
                       epochs=30, rates=(0.0, 0.01))  # fmt: skip


def _prepared(folder: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A prepared regression folder in the contract's layout from a tiny table whose target
    is far from 0 and 1 (mean about 1000, spread about 50); returns the raw rows per split."""
    rng = np.random.default_rng(seed)
    x = rng.random((100, 3)).astype(np.float32)
    y = 1000.0 + 60.0 * x[:, 0] - 40.0 * x[:, 1] ** 2 + rng.normal(0.0, 5.0, 100)
    raw = {"train": (x[:60], y[:60]), "val": (x[60:75], y[60:75]), "test": (x[75:], y[75:])}
    mean, std = float(raw["train"][1].mean()), float(raw["train"][1].std(ddof=0))
    folder.mkdir()
    for name, (features, target) in raw.items():
        write_rows(folder / f"{name}.parquet", Split(features, (target - mean) / std))
    write_meta(folder, PreparedMeta(
        source="csv", class_names=(), n_features=3, rows={k: len(v[1]) for k, v in raw.items()},
        train_labels_flipped=0, input_shape=(3,), task="regression", target_mean=mean,
        target_std=std,
    ))  # fmt: skip
    return raw


def _rmse(predicted, target) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - target) ** 2)))


def test_the_reference_is_in_target_units_like_the_same_fits_on_the_raw_target(tmp_path):
    raw = _prepared(tmp_path / "prepared")
    figures = reference_figures(tmp_path / "prepared", TINY_MLP, seed=42)
    by_model = {model["model"]: model for model in figures["models"]}
    assert figures["rows"] == {"fit": 75, "test": 25}
    x_fit = np.concatenate([raw["train"][0], raw["val"][0]]).astype(np.float64)
    y_fit = np.concatenate([raw["train"][1], raw["val"][1]])
    x_test, y_test = raw["test"][0].astype(np.float64), raw["test"][1]
    folds = KFold(FOLDS, shuffle=True, random_state=42)

    # The lab's baseline: the training rows' mean (not the validation rows'), on the test rows.
    baseline = by_model["training mean"]
    assert baseline["test_rmse"] == pytest.approx(_rmse(raw["train"][1].mean(), y_test), 1e-6)
    fold_mse = [np.mean((y_fit[held] - y_fit[kept].mean()) ** 2)
                for kept, held in folds.split(x_fit)]  # fmt: skip
    assert baseline["cv_rmse"] == pytest.approx(np.sqrt(np.mean(fold_mse)), 1e-6)

    # Ridge on the raw target: its predictions move with the target's shift and scale, and
    # its CV errors scale alike, so the same alpha wins and every figure is the same.
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, cv=folds, scoring="neg_mean_squared_error")
    ridge.fit(x_fit, y_fit)
    assert by_model["RidgeCV"]["chosen"] == f"alpha {ridge.alpha_:g}"
    assert by_model["RidgeCV"]["test_rmse"] == pytest.approx(
        _rmse(ridge.predict(x_test), y_test), 1e-6
    )
    assert by_model["RidgeCV"]["cv_rmse"] == pytest.approx(np.sqrt(-ridge.best_score_), 1e-6)

    mlp = by_model["MLPRegressor"]
    assert mlp["cv_rmse"] == min(mlp["cv_rmse_by_rate"].values())
    assert list(mlp["cv_rmse_by_rate"]) == ["0", "0.01"]
    # The table is learnable: both models beat the mean by far, on CV and on the test rows.
    for model in ("RidgeCV", "MLPRegressor"):
        assert by_model[model]["test_rmse"] < 0.6 * baseline["test_rmse"], model
        assert by_model[model]["cv_rmse"] < 0.6 * baseline["cv_rmse"], model


def test_the_reference_repeats_to_the_bit_with_its_seed(tmp_path):
    _prepared(tmp_path / "prepared")
    runs = [reference_figures(tmp_path / "prepared", TINY_MLP, seed=7) for _ in range(2)]
    for run in runs:
        for model in run["models"]:
            del model["seconds"]
    assert runs[0] == runs[1]


def test_the_mlp_alpha_is_the_keras_rate_times_the_batch(no_network):
    """scikit-learn's reported loss of one full batch, before any real step (learning rate
    1e-12), is half of Keras's objective mean(e²) + rate Σw² when alpha = rate · batch."""
    rng = np.random.default_rng(1)
    x, y = rng.random((40, 3)), rng.standard_normal(40)
    rate = 0.03
    settings = MlpSettings((5,), "tanh", 1e-12, batch_size=40, epochs=1, rates=(rate,))
    network = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", batch_size=40,
                           learning_rate_init=1e-12, max_iter=1, alpha=settings.mlp_alpha(rate),
                           random_state=0)  # fmt: skip
    with pytest.warns(Warning):  # one epoch does not converge
        network.fit(x, y)
    keras_objective = np.mean((network.predict(x) - y) ** 2) + rate * sum(
        float(np.sum(kernel**2)) for kernel in network.coefs_
    )
    assert 2 * network.loss_curve_[0] == pytest.approx(keras_objective, rel=1e-6)


def test_the_lab_params_give_the_lab_mlp_and_its_one_rate_entries():
    settings = MlpSettings.of(load_config(ROOT / "params.yaml"))
    assert settings.hidden_units == (256, 256)
    assert settings.activation == "tanh"
    assert (settings.batch_size, settings.epochs) == (32, 150)
    # hidden_only_1e_2 (a rate per layer) and the weight-decay entries are not one rate.
    assert settings.rates == (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def test_the_reference_command_writes_json_and_refuses_a_classification(
    tmp_path, capsys
):
    _prepared(tmp_path / "prepared")
    params = tiny_params()
    write_yaml(tmp_path / "params.yaml", params)
    regression_tables.main(["reference", "--prepared", str(tmp_path / "prepared"), "--params",
                            str(tmp_path / "params.yaml"), "--json", str(tmp_path / "ref.json"),
                            "--name", "tiny"])  # fmt: skip
    figures = json.loads((tmp_path / "ref.json").read_text())
    assert figures["mlp"]["hidden_units"] == params["model"]["hidden_units"]
    assert (figures["seed"], figures["table"]) == (params["base"]["seed"], "tiny")
    table = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[2] for line in table[2:5]] == [
        "training mean", "RidgeCV", "MLPRegressor"
    ]
    (tmp_path / "classes").mkdir()
    write_meta(tmp_path / "classes", PreparedMeta(
        source="digits", class_names=("a", "b"), n_features=3, rows={}, train_labels_flipped=0,
        input_shape=(3,),
    ))  # fmt: skip
    with pytest.raises(SystemExit, match=r"^error: .*classes: a classification task; the "
                       r"reference is for regression$"):  # fmt: skip
        regression_tables.main(["reference", "--prepared", str(tmp_path / "classes"),
                                "--params", str(tmp_path / "params.yaml")])  # fmt: skip
    with pytest.raises(DataError):
        reference_figures(tmp_path / "classes", TINY_MLP)

"""The regression tables that ship offline (benchmarks/regression_tables.py) and the
scikit-learn reference on prepared rows (benchmarks/regression_reference.py): the CSVs as a
user brings them, written without the network; the reference's figures in the target's units,
checked against the same fits on the raw target."""

from __future__ import annotations

import socket

import pandas as pd
import pytest
from ruamel.yaml import YAML

from benchmarks import regression_tables
from pipeline.config import load_config
from tests.support.params import ROOT, write_yaml

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

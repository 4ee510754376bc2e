"""Three real regression tables that ship offline, written as the CSVs a user would bring, and
a scikit-learn reference on the lab's own rows (benchmarks/regression_reference.py).

    python -m benchmarks.regression_tables write data/raw
    python -m benchmarks.regression_tables reference --prepared data/prepared [--json out.json]

`write` leaves `<name>.csv` and a data card `<name>.md` per table and prints the params.yaml
`data:` keys a user sets for each; every other key keeps the lab's default. The rows come
from installed packages (scikit-learn, and the `tables` extra of pyproject.toml:
palmerpenguins, vega_datasets), never from the network.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from pipeline.core.errors import LabError


@dataclass(frozen=True)
class Table:
    name: str  # the CSV's and the card's file stem
    target: str
    units: str
    source: str
    load: Callable[[], pd.DataFrame]
    drop_columns: tuple[str, ...] = ()
    why: str = ""  # why the dropped or changed columns are so

    def data_keys(self, folder: str) -> dict:
        """The params.yaml `data:` keys a user sets for this table, kept in `folder`."""
        keys = {"source": "csv", "csv_path": f"{folder}/{self.name}.csv",
                "target_column": self.target}  # fmt: skip
        if self.drop_columns:
            keys["drop_columns"] = list(self.drop_columns)
        return keys


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    # scaled=False: the measurements as recorded (age in years, sex 1/2, ...), not the
    # column-scaled copy scikit-learn serves by default; a user's CSV holds raw values.
    return load_diabetes(as_frame=True, scaled=False).frame


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _cars() -> pd.DataFrame:
    from vega_datasets import local_data

    # The JSON file vega_datasets bundles, read directly: `local_data.cars()` reads it with a
    # pandas keyword (convert_dates) that pandas 3 deprecates, and `vega_datasets.data` may
    # fetch by URL.
    cars = pd.read_json(local_data.cars.filepath, dtype=False)
    # The model year is stored as a date (1970-01-01): as text the lab would one-hot it into
    # 12 unordered columns; as a number it keeps the trend mpg shows over the years.
    cars["Year"] = pd.to_datetime(cars["Year"]).dt.year
    return cars


TABLES = (
    Table(
        name="diabetes",
        target="target",
        units="a score of disease progression one year after baseline (no unit given)",
        source=f"scikit-learn {version('scikit-learn')}, `load_diabetes(scaled=False)`: "
        "442 patients of Efron, Hastie, Johnstone and Tibshirani (2004), Least Angle Regression",
        load=_diabetes,
    ),
    Table(
        name="penguins",
        target="body_mass_g",
        units="grams",
        source=f"palmerpenguins {version('palmerpenguins')}, `load_penguins()`: penguins of "
        "three species on three islands near Palmer Station, Antarctica, 2007-2009 "
        "(Gorman, Williams and Fraser 2014)",
        load=_penguins,
        drop_columns=("year",),
        why="`year` (2007, 2008 or 2009) is when a penguin was measured, not a trait of it: "
        "a new penguin comes from a later year, outside the range the scaling saw",
    ),
    Table(
        name="cars",
        target="Miles_per_Gallon",
        units="miles per US gallon",
        source=f"vega_datasets {version('vega_datasets')}, `local_data.cars()`: the UCI "
        "Auto MPG cars of model years 1970-1982",
        load=_cars,
        drop_columns=("Name",),
        why="`Name` is free text (one model per row); `Year`, a date in the package, is "
        "written as the model year, a number",
    ),
)


def data_card(table: Table, frame: pd.DataFrame, folder: str) -> str:
    """A short Markdown card: rows, target and units, features, source, the params keys."""
    target = frame[table.target]
    features = [c for c in frame.columns if c != table.target and c not in table.drop_columns]
    complete = len(frame.drop(columns=list(table.drop_columns)).dropna())
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    lines = [
        f"# {table.name}.csv",
        "",
        f"- rows: {len(frame)}, {complete} with no missing value in the target or a feature",
        f"- target: `{table.target}`, {table.units}; mean {target.mean():.4g}, "
        f"std {target.std(ddof=0):.4g}, {target.min():.4g} to {target.max():.4g}, "
        f"{target.nunique()} distinct values",
        f"- features: {len(features)} columns ({', '.join(features)}), text: "
        f"{', '.join(text) if text else 'none'}",
        f"- source: {table.source}",
    ]
    if table.drop_columns:
        dropped = ", ".join(f"`{c}`" for c in table.drop_columns)
        lines.append(f"- left out with `data.drop_columns`: {dropped}")
    if table.why:
        lines.append(f"- why: {table.why}")
    lines += ["", "params.yaml:", "", "```yaml", _yaml_text(table.data_keys(folder)),
              "```", ""]  # fmt: skip
    return "\n".join(lines)


def write_tables(out_dir: Path, folder: str | None = None) -> dict[str, dict]:
    """Write each table's CSV and card into `out_dir`; return each table's `data:` keys.

    `folder` is the CSVs' path from the project root as params.yaml names it (default:
    `out_dir` as given).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = folder or out_dir.as_posix()
    keys = {}
    for table in TABLES:
        frame = table.load()
        frame.to_csv(out_dir / f"{table.name}.csv", index=False)
        (out_dir / f"{table.name}.md").write_text(data_card(table, frame, folder))
        keys[table.name] = table.data_keys(folder)
    return keys


def _yaml_text(keys: dict) -> str:
    """The `data:` section as a user writes it, in the keys' order (a YAML dumper sorts)."""
    lines = ["data:"]
    for key, value in keys.items():
        shown = f"[{', '.join(value)}]" if isinstance(value, list) else value
        lines.append(f"  {key}: {shown}")
    return "\n".join(lines)


def _reference(args: argparse.Namespace) -> str:
    from benchmarks.regression_reference import MlpSettings, markdown, reference_figures
    from pipeline.config.load import load_config

    config = load_config(args.params)
    seed = config.base.seed if args.seed is None else args.seed
    figures = reference_figures(args.prepared, MlpSettings.of(config), seed=seed, name=args.name)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return markdown([figures])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="write the tables' CSVs and data cards")
    write.add_argument("out_dir", type=Path)
    reference = commands.add_parser("reference", help="RidgeCV and MLPRegressor on prepared rows")
    reference.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    reference.add_argument("--json", type=Path, help="also write the figures here")
    reference.add_argument("--params", type=Path, default=Path("params.yaml"),
                           help="the lab's MLP, training settings and rates")
    reference.add_argument("--name", help="the table's name in the output")
    reference.add_argument("--seed", type=int, help="folds and MLP (default: base.seed)")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            for name, keys in write_tables(args.out_dir).items():
                print(f"# {name}\n{_yaml_text(keys)}\n")
        else:
            print(_reference(args))
    except LabError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()

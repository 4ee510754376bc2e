"""Stage `report`: one table of every sweep entry, sorted by validation error.

The best entry is chosen on validation error alone; the test error is shown beside it but
never used to choose.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from pipeline.cli import run_stage
from pipeline.config import LabConfig, load_config
from pipeline.errors import DataError

log = logging.getLogger(__name__)

COLUMNS = [
    "entry",
    "l2_rates",
    "train_error",
    "val_error",
    "test_error",
    "generalization_gap",
    "train_cross_entropy",
    "l2_penalty",
    "sq_weights_total",
]


def sweep_table(config: LabConfig, metrics_dir: Path) -> pd.DataFrame:
    """One row per entry in params.yaml (stale metrics files of removed entries are ignored)."""
    rows = []
    for entry in config.sweep:
        path = metrics_dir / f"{entry}.json"
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro evaluate@{entry}`")
        metrics = json.loads(path.read_text())
        rates = config.layer_rates(entry)
        rates_text = (
            f"{rates[0]:g}" if len(set(rates)) == 1 else " / ".join(f"{r:g}" for r in rates)
        )
        rows.append({"entry": entry, "l2_rates": rates_text, **metrics})
    table = pd.DataFrame(rows)
    sq_columns = sorted(
        c for c in table.columns if c.startswith("sq_weights_") and c not in COLUMNS
    )
    table = table[COLUMNS + sq_columns]
    return table.sort_values(["val_error", "entry"], kind="stable").reset_index(drop=True)


def to_markdown(table: pd.DataFrame) -> str:
    best = table.iloc[0]
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [header, rule]
    for _, row in table.iterrows():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "# L2 sweep\n\n"
        f"Best on validation error: **{best['entry']}** (L2 {best['l2_rates']}): "
        f"val error {best['val_error']:.4f}, test error {best['test_error']:.4f} "
        "(reported, not used to choose).\n\n" + "\n".join(lines) + "\n"
    )


def report(params: Path, metrics_dir: Path, out_dir: Path) -> None:
    table = sweep_table(load_config(params), metrics_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "sweep.csv", index=False, float_format="%.6g")
    (out_dir / "sweep.md").write_text(to_markdown(table))
    best = table.iloc[0]
    log.info(
        "best on validation: %s (val_err %.3f, test_err %.3f) of %d entries -> %s",
        best["entry"],
        best["val_error"],
        best["test_error"],
        len(table),
        out_dir / "sweep.md",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    run_stage("report", lambda: report(args.params, args.metrics, args.out))


if __name__ == "__main__":
    main()

"""The report's `choosing.md`: the three questions answered in one Markdown section."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from pipeline.choosing.data_size import data_equivalents, size_curves, size_figure
from pipeline.choosing.layers import (
    HEATMAP_COLUMNS,
    layer_grid,
    layer_heatmap_data,
    layer_heatmap_figure,
    layer_verdict,
)
from pipeline.choosing.next_rates import next_rates_figure, next_rates_markdown
from pipeline.choosing.points import ALL, place
from pipeline.config.entries import EntrySpec


def analyse(
    entries: Sequence[EntrySpec],
    table: pd.DataFrame,
    *,
    layers: Sequence[str],
    default_rows: int,
    default_noise: float,
    pool_rows: int,
    val_rows: int,
    grid_is_set: bool,
) -> tuple[dict[str, pd.DataFrame], dict[str, Figure], str]:
    """The plot data files, figures and Markdown (`choosing.md`) of the three questions."""
    points = place(entries, table, default_rows, default_noise, pool_rows)
    data: dict[str, pd.DataFrame] = {}
    figures: dict[str, Figure] = {}
    parts = ["# Choosing L2", ""]
    # Both plot files of dvc.yaml are always written, header only when the sweep lacks the
    # entries: `dvc plots show` warns about a declared plot whose file is missing.
    data["layer_heatmap"] = pd.DataFrame(columns=HEATMAP_COLUMNS)
    grid = layer_grid(points, layers)
    if grid is not None:
        data["layer_heatmap"] = layer_heatmap_data(grid)
        figures["layer_heatmap"] = layer_heatmap_figure(grid)
        table_md = ["| | " + " | ".join(f"{r:g}" for r in grid.columns) + " |"]
        table_md.append("|---|" + "---|" * len(grid.columns))
        for layer, row in grid.iterrows():
            cells = ["" if pd.isna(v) else f"{v:.3f}" for v in row]
            label = "all layers" if layer == ALL else f"{layer} alone"
            table_md.append(f"| {label} | " + " | ".join(cells) + " |")
        parts += [
            "## Which layer needs it",
            "",
            "Validation error (mean over seeds when there are several), layers x rates "
            "(`plots/layer_heatmap.png`):",
            "",
            *table_md,
            "",
            *layer_verdict(points, layers, val_rows),
            "",
        ]
    curves = size_curves(points)
    data["error_vs_train_size"] = curves
    if not curves.empty:
        figures["error_vs_train_size"] = size_figure(curves)
        parts += [
            "## Would more data do better?",
            "",
            "Test error vs training-set size (`plots/error_vs_train_size.png`): rate 0 and, at "
            "each size, the rate with the lowest validation error. Subsets are nested.",
            "",
        ]
        sentences = data_equivalents(curves)
        for noise in sorted({s[0] for s in sentences}):
            parts.append(f"With label noise {noise:g}:")
            parts += [f"- {s}." for nz, _, s in sentences if nz == noise]
            parts.append("")
        if not sentences:
            parts += ["Rate 0 is best on validation at every size: L2 has no data-equivalent.", ""]
    if any(p.rows is None and p.layer == ALL for p in points):
        figures["next_rates"] = next_rates_figure(points)
    parts += next_rates_markdown(points, val_rows, grid_is_set)
    return data, figures, "\n".join(parts).rstrip() + "\n"

"""The report's `choosing.md`: the three questions answered in one Markdown section."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from pipeline.choosing.data_size import data_equivalents, size_curves, size_figure
from pipeline.choosing.decision import Decision
from pipeline.choosing.layers import (
    HEATMAP_COLUMNS,
    layer_grid,
    layer_heatmap_data,
    layer_heatmap_figure,
    layer_verdict,
    tied_cells,
)
from pipeline.choosing.next_rates import distinct_from, next_rates_figure, next_rates_markdown
from pipeline.choosing.points import ALL, HeldOut, place
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
    held_out: HeldOut | None = None,
    decision: Decision | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Figure], str]:
    """The plot data files, figures and Markdown (`choosing.md`): the decision, then the
    three questions. `held_out`: the validation predictions the paired tests compare."""
    points = place(entries, table, default_rows, default_noise, pool_rows)
    data: dict[str, pd.DataFrame] = {}
    figures: dict[str, Figure] = {}
    parts = ["# Choosing L2", ""]
    if decision is not None:
        parts += decision.markdown()
    # Both plot files of dvc.yaml are always written, header only when the sweep lacks the
    # entries: `dvc plots show` warns about a declared plot whose file is missing.
    data["layer_heatmap"] = pd.DataFrame(columns=HEATMAP_COLUMNS)
    grid = layer_grid(points, layers)
    if grid is not None:
        data["layer_heatmap"] = layer_heatmap_data(grid)
        tied = tied_cells(points, grid, val_rows, held_out)
        figures["layer_heatmap"] = layer_heatmap_figure(grid, tied)
        table_md = ["| | " + " | ".join(f"{r:g}" for r in grid.columns) + " |"]
        table_md.append("|---|" + "---|" * len(grid.columns))
        for layer, row in grid.iterrows():
            cells = [
                "" if pd.isna(v) else f"{v:.3f}" + (" ≈" if (layer, rate) in tied else "")
                for rate, v in row.items()
            ]
            label = "all layers" if layer == ALL else f"{layer} alone"
            table_md.append(f"| {label} | " + " | ".join(cells) + " |")
        parts += [
            "## Which layer needs it",
            "",
            "Validation error (mean over seeds when there are several; mean CV error with "
            "folds), layers x rates (`plots/layer_heatmap.png`)"
            + (
                "; ≈ marks the cells a paired test cannot tell apart from the best:"
                if tied
                else ":"
            ),
            "",
            *table_md,
            "",
            *layer_verdict(points, layers, val_rows, held_out),
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
        distinct = distinct_from(val_rows, held_out)
        figures["next_rates"] = next_rates_figure(points, distinct)
    cross_validated = decision is not None and bool(decision.folds)
    parts += next_rates_markdown(points, val_rows, grid_is_set, held_out, cross_validated)
    return data, figures, "\n".join(parts).rstrip() + "\n"

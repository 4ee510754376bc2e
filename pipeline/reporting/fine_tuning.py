"""What the report adds for a fine-tuning sweep (`model.start_from`): where each entry starts,
its `l2_sp` rates and frozen layers beside its `l2` rates, each layer's distance from its
starting weights (evaluate's `sq_dist_<layer>`, `rel_dist_<layer>`, `sum_sq_dist`,
`l2_sp_penalty`), and the plot of that distance against the `l2_sp` rate.

A sweep without a start model gets none of it: its table, pages and plot files stay as they
were, except the distance plot's file, written header only so that `dvc plots show` finds
every file dvc.yaml declares.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from pipeline.config.entries import EntrySpec
from pipeline.reporting import markdown, plots

# Beside `weight_decay`, and beside `sum_sq_weights`.
START_COLUMNS = ["start", "l2_sp_rates", "frozen"]
DISTANCE_COLUMNS = ["l2_sp_penalty", "sum_sq_dist"]
LAYER_PREFIXES = ("sq_dist_", "rel_dist_")
DISTANCE_PLOT = "distance_vs_l2_sp_rate"
DISTANCE_PLOT_COLUMNS = ["entry", "l2_sp_rate", "log10_rate", "series", "sq_dist", "rel_dist"]


def start_words(entry: EntrySpec) -> str:
    return "start model" if entry.tuning.from_start else "scratch"


def sp_rates_label(entry: EntrySpec) -> str:
    """`0.01`, `0.01 / 0` per layer with a start, or empty for an entry from scratch."""
    uniform = entry.uniform_sp_rate
    if uniform is not None:
        return f"{uniform:g}"
    return " / ".join(f"{rate:g}" for rate in entry.sp_rates)


def start_cells(entry: EntrySpec) -> dict[str, str]:
    """The table's fine-tuning cells of one entry."""
    return {
        "start": start_words(entry),
        "l2_sp_rates": sp_rates_label(entry),
        "frozen": ", ".join(entry.tuning.frozen),
    }


def with_start_columns(columns: Sequence[str]) -> list[str]:
    """The table's columns with the fine-tuning ones after `weight_decay` and after
    `sum_sq_weights`."""
    found = list(columns)
    at = found.index("weight_decay") + 1
    found[at:at] = START_COLUMNS
    at = found.index("sum_sq_weights") + 1
    found[at:at] = DISTANCE_COLUMNS
    return found


def sp_rates_by_layer(entries: Sequence[EntrySpec]) -> str:
    """Markdown: the `l2_sp` rate of each layer with a start, one row per entry from it."""
    started = [e for e in entries if e.tuning.from_start]
    if not started:
        return ""
    layers = [name for name, _ in started[0].tuning.sp_rates]
    rows = [[e.name, *(f"{rate:g}" for rate in e.sp_rates)] for e in started]
    lines = ["## L2-SP rate per layer (toward the start)", "",
             *markdown.table(["entry", *layers], rows)]  # fmt: skip
    return "\n".join(lines) + "\n"


def sp_axis(entries: Sequence[EntrySpec], trained: Sequence[str]) -> dict[str, float]:
    """entry -> its one `l2_sp` rate, for the entries on the `l2_sp` axis: from the start
    model with every layer trained, no `l2` and no decay, on data's training split (rate 0 is
    the unregularized fine-tuned model)."""
    return {
        e.name: e.uniform_sp_rate
        for e in entries
        if e.tuning.from_start and not e.tuning.frozen and e.uniform_sp_rate is not None
        and not any(e.rates) and not e.weight_decay and not e.uses_pool and e.name in trained
    }  # fmt: skip


def distance_by_sp_rate(sweep: pd.DataFrame, rates: dict[str, float]) -> pd.DataFrame:
    """One row per (entry on the `l2_sp` axis, layer with a start): its squared and relative
    distance from the starting weights; header only when no entry is on the axis."""
    layers = plots.layer_series(sweep.columns, "sq_dist_")
    if not rates or not layers:
        return pd.DataFrame(columns=DISTANCE_PLOT_COLUMNS)
    rows = plots.by_rate(sweep, rates).rename(columns={"l2_rate": "l2_sp_rate"})
    ids = ["entry", "l2_sp_rate", "log10_rate"]
    squared = rows.melt(id_vars=ids, value_vars=list(layers), var_name="series",
                        value_name="sq_dist")  # fmt: skip
    relative = rows.melt(id_vars=ids, value_vars=[f"rel_dist_{n}" for n in layers.values()],
                         value_name="rel_dist")  # fmt: skip
    squared["series"] = squared["series"].map(layers)
    # Same rows, layers in the same order: the melted frames line up row for row.
    squared["rel_dist"] = relative["rel_dist"].to_numpy()
    return squared[DISTANCE_PLOT_COLUMNS]


def distance_figure(data: pd.DataFrame) -> Figure:
    """Each layer's ||w - w0|| / ||w0|| against the `l2_sp` rate."""
    figure = plots.rate_figure(
        data.rename(columns={"l2_sp_rate": "l2_rate"}),
        "rel_dist",
        title="Distance from the start per layer vs L2-SP rate",
        ylabel="||w - w0|| / ||w0|| (kernel)",
    )
    figure.axes[0].set_xlabel("L2-SP rate, toward the start (log scale; 0 = no pull)")
    return figure


def distances_section(sweep: pd.DataFrame) -> str:
    """Markdown for choosing.md: where each entry starts, its `l2` and `l2_sp` rates, its
    frozen layers and how far each layer moved from its starting weights; "" for a sweep
    without a start model (its table has no `start` column)."""
    if "start" not in sweep.columns:
        return ""
    layers = list(plots.layer_series(sweep.columns, "rel_dist_").values())
    header = ["entry", "start", "l2", "l2_sp", "frozen", "Σ(w - w0)²",
              *(f"{layer}: ‖w - w0‖/‖w0‖" for layer in layers)]  # fmt: skip
    rows = [
        [row["entry"], row["start"], row["l2_rates"], row["l2_sp_rates"], row["frozen"],
         *(_figure(row.get(column)) for column in
           ["sum_sq_dist", *(f"rel_dist_{layer}" for layer in layers)])]
        for _, row in sweep.iterrows()
    ]  # fmt: skip
    lines = [
        "", "## Where each entry starts, and how far it moved", "",
        "Kernels only, at the final weights of the base seed's model; an entry from scratch "
        "has no starting weights to measure against.", "", *markdown.table(header, rows),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _figure(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.4g}"

"""The one Markdown table every page of the report uses.

Not pandas' `to_markdown` (tabulate pads every cell to its column's width, so the committed
pages would change and their diffs grow): one row per line, cells as given, `---` rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table; cells are already formatted text."""
    # An empty header cell (a column of row labels) is written "| |", as on the first pages.
    head = "|" + "|".join(f" {cell} " if cell else " " for cell in header) + "|"
    return [head, "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]

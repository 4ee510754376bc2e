"""Reading `reports/choosing.md` back as a user reads it: what the Decision table says about
each pair, and what "What to try next" says about the pairs it judges."""

from __future__ import annotations

import re

# "0.003 (l2_3e_3, Holm-adjusted p = 0.0625)": a neighbour and the adjusted p it is quoted with.
NEIGHBOUR = re.compile(r"\d[\d.e+-]* \(([\w.-]+), Holm-adjusted p = ([^)]+)\)")
# "rate 0 (l2_0) cannot be told apart from l2_1e_2 (Holm-adjusted p = 0.25, ..."
ZERO_TIED = re.compile(
    r"rate 0 \(([\w.-]+)\) cannot be told apart from [\w.-]+ \(Holm-adjusted p = ([^,]+),"
)


def section(text: str, title: str) -> str:
    """The body of `## <title>` (empty when the page has no such section)."""
    parts = text.split(f"\n## {title}\n")
    return parts[1].split("\n## ")[0] if len(parts) > 1 else ""


def decision_table(text: str) -> dict[str, tuple[str, bool]]:
    """entry -> (its Holm p as printed, told apart) from the Decision table."""
    lines = [line for line in section(text, "Decision").splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    found = {}
    for line in lines[2:]:  # after the header and its rule
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        cells = dict(zip(header, cells, strict=True))
        found[cells["entry"]] = (cells["Holm p"], cells["told apart"] == "yes")
    return found


def next_claims(text: str) -> dict[str, tuple[str, bool]]:
    """entry -> (the adjusted p quoted, told apart) for every pair "What to try next" judges:
    the neighbours of the chosen rate, and rate 0 when it says L2 makes no difference."""
    found = {}
    for line in section(text, "What to try next").splitlines():
        tied = "**cannot be told apart** from" in line
        for entry, p in NEIGHBOUR.findall(line):
            found[entry] = (p, not tied)
        for entry, p in ZERO_TIED.findall(line):
            found[entry] = (p, False)
    return found

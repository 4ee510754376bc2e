"""User pages describe the lab as it is, not how it got there: no targets met, no rounds,
no issues. The history lives in git log and the issue tracker. Reads files only."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Phrases of a development log, each with what a user page says instead.
DEVELOPMENT = {
    r"\b(?:not (?:clearly )?)?met\b": "say what was measured",  # a target met or not
    r"\btarget (?:of|≤|<|≥|>)": "say what was measured",
    r"^#+ targets?\b": "say what was measured",
    r"\b(?:this|the previous|in this|the last) round\b": "date the figure or drop it",
    r"\bthe issue\b": "say what the lab does",
    r"\b(?:before|after) this change\b": "say what the lab does",
    r"\bas before\b": "say what it does",
}


def development_language(text: str) -> list[tuple[int, str, str]]:
    """(line, phrase, what to write instead) for every development phrase in `text`."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, instead in DEVELOPMENT.items():
            for match in re.finditer(pattern, line, re.IGNORECASE):
                found.append((number, match.group(0), instead))
    return found


def test_user_pages_carry_no_development_language():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = [
        f"{page.relative_to(ROOT)}:{line}: {phrase!r}: {instead}"
        for page in pages
        for line, phrase, instead in development_language(page.read_text())
    ]
    assert not found, "development language in user pages:\n" + "\n".join(found)


def test_the_phrases_seen_before_are_caught():
    old = (
        "Cold sweep: at the edge, not clearly met\n"
        "(target ≤ 45 s: met; 42.5 s in the run before)\n"
        "retrained in this round on an AMD EPYC\n"
        "pip installs the lock as before.\n"
        "## Targets\n"
    )
    assert [line for line, _, _ in development_language(old)] == [1, 2, 2, 3, 4, 5]

"""The lab commands the docs show, as a reader copies them: every line of a ```bash block
and every inline code span in prose that starts with `dvc `, `python -m pipeline` or
`python3 -m pipeline`, in README.md, docs/*.md, data/raw/README.md and params.yaml's
comments. docs/choosing/ is left out: the report stage writes it (its commands are the
report's, tested with the report).

A command that cannot run in a scratch copy carries a marker right before its block or
span in the page's source: `<!-- not run by tests: <reason> -->`. A span with a
placeholder (`<entry>`, `...`) is a pattern, not a command. The test command itself
(`python3 -m pipeline.bootstrap test`) is never run by the tests, wherever it is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.params import ROOT

LAB_PREFIXES = ("dvc ", "python -m pipeline", "python3 -m pipeline")
MARKER = re.compile(r"<!--\s*not run by tests:\s*(.*?)\s*-->", re.S)
_TOKENS = re.compile(
    r"(?P<marker><!--\s*not run by tests:.*?-->)"
    r"|```(?P<lang>\w*)\n(?P<block>.*?)```"
    r"|(?<!`)`(?P<span>[^`]+)`(?!`)",
    re.S,
)
_PLACEHOLDER = re.compile(r"<[^>]*>|\.\.\.")
TEST_COMMAND = "python3 -m pipeline.bootstrap test"


@dataclass(frozen=True)
class Command:
    page: str  # relative to the project root
    text: str  # as bash runs it: one logical line of a block (heredoc included), or a span
    in_block: bool
    skip: str | None  # the marker's reason


def pages() -> list[Path]:
    docs = sorted((ROOT / "docs").glob("*.md"))
    return [ROOT / "README.md", *docs, ROOT / "data" / "raw" / "README.md", ROOT / "params.yaml"]


def _strip_comment(line: str) -> str:
    """The line without a trailing `# comment` outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def block_lines(block: str) -> list[str]:
    """The block's logical lines: continuations joined, a heredoc kept with its body."""
    lines, raw = [], block.splitlines()
    i = 0
    while i < len(raw):
        line = _strip_comment(raw[i])
        while line.endswith("\\") and i + 1 < len(raw):
            i += 1
            line = line[:-1].rstrip() + " " + _strip_comment(raw[i]).strip()
        heredoc = re.search(r"<<\s*'?(\w+)'?", line)
        if heredoc:
            end = raw.index(heredoc.group(1), i + 1)
            line = "\n".join([line, *raw[i + 1 : end + 1]])
            i = end
        if line.strip():
            lines.append(line)
        i += 1
    return lines


def runs_the_lab(text: str) -> bool:
    first_line = text.splitlines()[0]
    return any(part.strip().startswith(LAB_PREFIXES) for part in re.split(r"&&|;", first_line))


def _markdown_of(page: Path) -> str:
    if page.suffix != ".yaml":
        return page.read_text()
    # params.yaml: its comments, joined, so a span may run over two comment lines.
    comments = [line.split("#", 1)[1] for line in page.read_text().splitlines() if "#" in line]
    return "\n".join(comments)


def commands_of(page: Path, lab_only: bool = True) -> list[Command]:
    """The page's lab commands in reading order; with `lab_only=False` also every other
    line of its bash blocks (the `cp`, `git commit` a reader runs between them)."""
    name = str(page.relative_to(ROOT))
    found, reason = [], None
    for token in _TOKENS.finditer(_markdown_of(page)):
        if token["marker"]:
            reason = MARKER.match(token["marker"]).group(1)
            continue
        if token["block"] is not None:
            texts = block_lines(token["block"]) if token["lang"] == "bash" else []
            in_block = True
        else:
            texts = [" ".join(token["span"].split())]
            in_block = False
        for text in texts:
            is_command = runs_the_lab(text) or (in_block and not lab_only)
            if is_command and not (not in_block and _PLACEHOLDER.search(text)):
                skip = "the test command itself" if text.startswith(TEST_COMMAND) else reason
                found.append(Command(name, text, in_block, skip))
        reason = None  # a marker covers the one block or span after it
    return found


def documented_commands() -> list[Command]:
    return [command for page in pages() for command in commands_of(page)]


def claimed_by_blocks() -> set[str]:
    """Texts that a page's block shows: its page's test runs them, so a span repeating one
    is covered there."""
    return {c.text for c in documented_commands() if c.in_block and not c.skip}


def blocks_of(page: str) -> list[str]:
    """Every line of the page's bash blocks that runs here, lab command or not, in order."""
    return [c.text for c in commands_of(ROOT / page, lab_only=False) if c.in_block and not c.skip]

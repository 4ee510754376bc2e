"""Every figure a page quotes from a committed output is that output's.

Two ways to quote, both checked here:
- a marked block, `<!-- NAME:start -->` ... `<!-- NAME:end -->`, whose text is rendered from
  its source by `BLOCKS[NAME]` (the README's sweep table, the benchmark tables, the
  decision's lines). `python tests/test_docs_figures.py` rewrites every block from its
  source after a run changes one; nothing in a block is typed by hand.
- a figure in a sentence: `FIGURES` lists each one as the sentence's words with the figure
  written as a format field over `SOURCES` (`{best[p_vs_rate_0]:.2g}`); the rendered text
  must stand in the page (line breaks count as spaces).
When a committed output changes its keys or its files, `SOURCES`, `BLOCKS`, `FIGURES` and
`KEYS` below are the one place to follow it. Reads files only; imports nothing of the project.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- (\S+):start -->\n(.*?)<!-- \1:end -->", re.S)


def _json(name: str) -> dict:
    return json.loads((ROOT / name).read_text())


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _sweep_rows() -> dict[str, dict[str, float | str]]:
    """reports/sweep.csv by entry, every figure at the precision the file holds."""
    with (ROOT / "reports" / "sweep.csv").open() as handle:
        return {
            row["entry"]: {k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)
        }


# The names a figure's format field starts with, and the committed output each one reads.
SOURCES: dict[str, Callable[[], dict]] = {
    "best": lambda: _json("reports/best.json"),
    "sweep": _sweep_rows,
    "choosing": lambda: _table_rows("reports/choosing.md"),  # its first table, by entry
    "compute": lambda: _json("benchmarks/compute_results.json"),
    "bench": lambda: _json("benchmarks/results.json"),
}


@cache
def source(name: str) -> dict:
    return SOURCES[name]()


def _table_rows(path: str) -> dict[str, dict[str, float | str]]:
    """The first Markdown table of `path` by its first column, cells as numbers where they are."""
    rows = [line for line in _first_table(path) if not set(line) <= set("|-")]
    cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in rows]
    header = cells[0]
    return {row[0]: {h: _number(c) for h, c in zip(header, row, strict=True)} for row in cells[1:]}


def _first_table(path: str) -> list[str]:
    lines = (ROOT / path).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("|")]
    if not starts:
        raise LookupError(f"{path} has no Markdown table: update BLOCKS or SOURCES")
    start, table = starts[0], []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table


def _table_columns(path: str, width: int) -> str:
    """The first Markdown table of `path`, its first `width` columns, cells as written."""
    rows = []
    for line in _first_table(path):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")][:width]
        rule = all(set(cell) == {"-"} for cell in cells)
        rows.append("|" + "|".join(cells) + "|" if rule else "| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _paragraph(path: str, opening: str) -> str:
    """The paragraph of `path` that starts with `opening`."""
    paragraphs = (ROOT / path).read_text().split("\n\n")
    found = [p.strip() for p in paragraphs if p.startswith(opening)]
    if not found:
        raise LookupError(f"{path} has no paragraph starting {opening!r}: update BLOCKS")
    return found[0]


def _committed_on(path: str) -> str:
    """The day the file's current content was committed (git's author date)."""
    return subprocess.run(
        ["git", "log", "-1", "--format=%as", "--", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _benchmark(path: str) -> str:
    """The date, the machine and the table of a benchmark's results file."""
    results = _json(path)
    m = results["machine"]
    start, end = m["load_average_at_start"][0], m["load_average_at_end"][0]
    return (
        f"Measured on {m['cpus']} vCPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Python "
        f"{m['python']}, Keras {m['keras']}, MLflow {m['mlflow']}; 1-minute load average "
        f"{start:.1f} at the start and {end:.1f} at the end, the benchmark included. Committed "
        f"on {_committed_on(path)} as `{path}`.\n\n{results['table']}"
    )


# Marked blocks: name -> the text the block holds, rendered from its source.
BLOCKS: dict[str, Callable[[], str]] = {
    "sweep.md": lambda: _table_columns("reports/sweep.md", 7),
    "layers.md": lambda: _table_columns("docs/choosing/layers.md", 7),  # the layer grid's report
    "choosing.md:chosen": lambda: _paragraph("reports/choosing.md", "**Chosen:"),
    "compute_results.json": lambda: _benchmark("benchmarks/compute_results.json"),
    "results.json": lambda: _benchmark("benchmarks/results.json"),
}

# (page, the words around a figure, the figure as a format field over SOURCES).
FIGURES: list[tuple[str, str]] = [
    (
        "README.md",
        "sweep (`dvc repro`, {compute[sweep][now][cold_repro_s]:.0f}",
    ),
    (
        "README.md",
        "{sweep[l2_0][train_error]:.0%} train error and {sweep[l2_0][test_error]:.0%}",
    ),
    (
        "README.md",
        "rate goes up: {sweep[l2_0][sq_weights_total]:.0f} → "
        "{sweep[l2_1e_3][sq_weights_total]:.0f} → {sweep[l2_3e_3][sq_weights_total]:.0f} "
        "→ {sweep[l2_1e_2][sq_weights_total]:.0f} → "
        "{sweep[l2_3e_2][sq_weights_total]:.0f} → {sweep[l2_1e_1][sq_weights_total]:.4f}",
    ),
    (
        "README.md",
        "unregularized model at {sweep[decay_2e_2][test_error]:.0%}",
    ),
    (
        "README.md",
        "while `l2_1e_2` reaches {sweep[l2_1e_2][test_error]:.1%}",
    ),
    (
        "README.md",
        "larger: `decay_3` reaches {sweep[decay_3][test_error]:.1%}",
    ),
    (
        "README.md",
        "It rises from {sweep[l2_0][near_linear_share]:.2f}",
    ),
    (
        "README.md",
        "Holm p = {best[p_vs_rate_0]:.2g}",
    ),
    (
        "docs/choosing-l2.md",
        "layer grid takes {compute[layer_grid][now][cold_repro_s]:.0f}",
    ),
    (
        "docs/choosing-l2.md",
        "machine, {compute[layer_grid][now_2_workers][cold_repro_s]:.0f}",
    ),
    (
        "docs/choosing-l2.md",
        "`l2_1e_2`'s figures (val {sweep[l2_1e_2][val_error]:.3f}, test "
        "{sweep[l2_1e_2][test_error]:.3f}, penalty {sweep[l2_1e_2][l2_penalty]:.4f}",
    ),
    (
        "docs/choosing-l2.md",
        "rate 0 test error {sweep[l2_0][test_error]:.3f}, 0.01 {sweep[l2_1e_2][test_error]:.3f}",
    ),
    ("docs/choosing-l2.md", "test error of the base seed {sweep[l2_1e_2][test_error]:.3f}"),
    (
        "docs/decision.md",
        "(Holm p from {choosing[decay_3][Holm p]:.2g} for `decay_3` to "
        "{choosing[l2_1e_1][Holm p]:.0e}; rate 0: Holm p = {best[p_vs_rate_0]:.2g}",
    ),
    (
        "docs/decision.md",
        "± 0.020 | {sweep[l2_0][val_error]:.3f} | {sweep[l2_0][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.019 | {sweep[l2_1e_4][val_error]:.3f} | {sweep[l2_1e_4][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.033 | {sweep[l2_1e_3][val_error]:.3f} | {sweep[l2_1e_3][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.027 | {sweep[l2_3e_3][val_error]:.3f} | {sweep[l2_3e_3][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.015** | {sweep[l2_1e_2][val_error]:.3f} | {sweep[l2_1e_2][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.029 | {sweep[l2_3e_2][val_error]:.3f} | {sweep[l2_3e_2][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.002 | {sweep[l2_1e_1][val_error]:.3f} | {sweep[l2_1e_1][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.021 | {sweep[hidden_only_1e_2][val_error]:.3f} | "
        "{sweep[hidden_only_1e_2][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.019 | {sweep[decay_2e_2][val_error]:.3f} | {sweep[decay_2e_2][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "± 0.021 | {sweep[decay_3][val_error]:.3f} | {sweep[decay_3][test_error]:.3f}",
    ),
    (
        "docs/decision.md",
        "test rows), against {best[chosen_test_error]:.3f} "
        "[{best[test_error_ci_low]:.3f}, {best[test_error_ci_high]:.3f}",
    ),
    (
        "docs/own-model-and-data.md",
        "error, against {sweep[l2_1e_2][test_error]:.1%}",
    ),
    (
        "docs/own-model-and-data.md",
        "the MLP's is {sweep[l2_3e_2][test_error]:.0%}",
    ),
    (
        "docs/performance.md",
        "first epoch** costs {compute[first_epoch][now_10][first_epoch_per_tower_s]:.2f}",
    ),
    (
        "docs/performance.md",
        "{compute[first_epoch][now_40][first_epoch_per_tower_s]:.2f}",
    ),
    (
        "docs/performance.md",
        "against {compute[first_epoch][before_10][first_epoch_per_tower_s]:.2f}",
    ),
    (
        "docs/performance.md",
        "{compute[first_epoch][before_40][first_epoch_per_tower_s]:.2f}",
    ),
    (
        "docs/performance.md",
        "towers it is {compute[first_epoch][now_160][first_epoch_per_tower_s]:.2f}",
    ),
    (
        "docs/performance.md",
        "default sweep** takes {compute[sweep][now][cold_repro_s]:.1f}",
    ),
    (
        "docs/performance.md",
        "`train` {compute[sweep][now][by_stage][train][seconds]:.1f}",
    ),
    (
        "docs/performance.md",
        "{compute[sweep][now][by_stage][evaluate][seconds]:.1f}",
    ),
    (
        "docs/performance.md",
        "{compute[sweep][now][by_stage][report][seconds]:.1f}",
    ),
    (
        "docs/performance.md",
        "{compute[sweep][now][by_stage][record][seconds]:.1f}",
    ),
    (
        "docs/performance.md",
        "63-model grid** takes {compute[layer_grid][now][cold_repro_s]:.0f}",
    ),
    (
        "docs/performance.md",
        "{compute[layer_grid][now_2_workers][cold_repro_s]:.0f}",
    ),
    (
        "docs/performance.md",
        "{bench[memory][sweep][models]} models peaks at {bench[memory][sweep][peak_rss_mib]:,.0f}",
    ),
    (
        "docs/performance.md",
        "against {bench[memory][tensorflow_only_peak_rss_mib]:,.0f}",
    ),
    (
        "docs/performance.md",
        "imports TensorFlow; with {bench[memory][seeds][models]}",
    ),
    (
        "docs/performance.md",
        "{bench[memory][seeds][peak_rss_mib]:,.0f}",
    ),
    (
        "docs/performance.md",
        "one graph** train {bench[fused][default][alone_total_s]:.1f}",
    ),
    (
        "docs/performance.md",
        "after another in {bench[fused][default][fused_s]:.1f}",
    ),
    (
        "docs/performance.md",
        "**MLflow** takes {bench[mlflow][sqlite][share_of_run]:.1%}",
    ),
    (
        "docs/performance.md",
        "and {bench[mlflow][http][share_of_run]:.1%}",
    ),
    (
        "docs/views.md",
        "share rises from {sweep[l2_0][near_linear_share]:.2f}",
    ),
    (
        "docs/views.md",
        "penalty to {sweep[l2_1e_3][near_linear_share]:.2f} at 1e-3, "
        "{sweep[l2_3e_3][near_linear_share]:.2f}",
    ),
    (
        "docs/views.md",
        "layer moves most ({sweep[l2_0][near_linear_share_hidden_2]:.2f} → "
        "{sweep[l2_1e_2][near_linear_share_hidden_2]:.2f}",
    ),
]


# (page, committed output, the keys the page names): each must still be a key of the output.
# `test_error_ci_low/high` in a page names both keys.
KEYS: list[tuple[str, str, list[str]]] = [
    ("docs/choosing-l2.md", "reports/best.json", [
        "rule", "chosen_entry", "cv_error_mean", "cv_error_se", "test_error_ci_low",
        "test_error_ci_high", "indistinguishable", "verdict", "best_entry", "best_val_error",
        "best_test_error",
    ]),
    ("docs/decision.md", "reports/best.json", [
        "cv_error_mean", "cv_error_se", "chosen_test_error", "test_error_ci_low",
        "test_error_ci_high",
    ]),
    ("docs/tutorial.md", "reports/best.json", [
        "rule", "chosen_entry", "cv_error_mean", "cv_error_se", "test_error_ci_low",
        "test_error_ci_high",
    ]),
    ("docs/params.md", "reports/best.json", ["best_entry", "best_val_error", "best_test_error"]),
    ("docs/params.md", "metrics/l2_0.json", [
        "train_error", "val_error", "test_error", "val_cross_entropy", "generalization_gap",
        "l2_penalty", "sq_weights_total",
    ]),
]  # fmt: skip

# (page, committed output, what starts a line the page copies from it): every such line of
# the page stands in the output as it is, and the page has at least one.
LINES: list[tuple[str, str, str]] = [
    ("docs/choosing-l2.md", "reports/choosing.md", "dvc exp run --queue -n next_"),
]


def rendered(template: str) -> str:
    return template.format(**{name: source(name) for name in SOURCES if "{" + name in template})


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _line_of(page_text: str, words: str) -> int:
    """The line where the template's words before its first figure start, or 1."""
    lead = _flat(words.split("{", 1)[0]).strip()
    flat, lines = "", []
    for number, line in enumerate(page_text.splitlines(), 1):
        flat += line + " "
        lines += [number] * (len(line) + 1)
    flat_index = _flat(flat).find(lead) if lead else -1
    return lines[min(max(flat_index, 0), len(lines) - 1)] if lines else 1


def figure_problems() -> list[str]:
    found = []
    for page, template in FIGURES:
        text = (ROOT / page).read_text()
        try:
            expected = rendered(template)
        except (KeyError, IndexError, ValueError, LookupError) as error:
            line = _line_of(text, template)
            found.append(f"{page}:{line}: `{template}`: the source has no {error}")
            continue
        if _flat(expected) not in _flat(text):
            line = _line_of(text, template)
            found.append(f"{page}:{line}: the source gives {expected!r}; the page says otherwise")
    return found


def key_problems() -> list[str]:
    found = []
    for page, output, keys in KEYS:
        text = (ROOT / page).read_text()
        held = set(json.loads((ROOT / output).read_text()))
        for key in keys:
            named = key in text or key.replace("_ci_high", "_ci_low/high") in text
            if key not in held:
                line = next((n for n, t in enumerate(text.splitlines(), 1) if key in t), 1)
                found.append(f"{page}:{line}: names `{key}`, which {output} no longer has")
            elif not named:
                found.append(f"{page}: no longer names `{key}`; drop it from KEYS")
    return found


def line_problems() -> list[str]:
    found = []
    for page, output, opening in LINES:
        held = set((ROOT / output).read_text().splitlines())
        lines = (ROOT / page).read_text().splitlines()
        copied = [(n, line) for n, line in enumerate(lines, 1) if line.startswith(opening)]
        if not copied:
            found.append(f"{page}: no line starts with {opening!r} any more; drop it from LINES")
        found += [
            f"{page}:{n}: not a line of {output}: {line}" for n, line in copied if line not in held
        ]
    return found


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def block_problems() -> list[str]:
    found, used = [], set()
    for page in pages():
        text = page.read_text()
        where = page.relative_to(ROOT).as_posix()
        for match in BLOCK.finditer(text):
            name, shown = match.group(1), match.group(2)
            line = text.count("\n", 0, match.start()) + 1
            used.add(name)
            if name not in BLOCKS:
                found.append(f"{where}:{line}: block {name} has no renderer in BLOCKS")
                continue
            try:
                expected = BLOCKS[name]().strip()
            except (LookupError, ValueError, OSError) as error:
                found.append(f"{where}:{line}: block {name}: {error}")
                continue
            if shown.strip() != expected:
                diff = difflib.unified_diff(
                    shown.strip().splitlines(), expected.splitlines(),
                    "page", "source", n=0, lineterm="",
                )  # fmt: skip
                found.append(
                    f"{where}:{line}: block {name} is not its source's text (run "
                    f"`python tests/test_docs_figures.py` to rewrite it):\n"
                    + "\n".join(list(diff)[2:8])
                )
    found += [f"no page quotes block {name}" for name in sorted(set(BLOCKS) - used)]
    return found


def rewrite_blocks() -> list[Path]:
    """Rewrite every marked block from its source; the pages that changed."""
    changed = []
    for page in pages():
        text = page.read_text()
        new = BLOCK.sub(
            lambda m: (
                f"<!-- {m.group(1)}:start -->\n{BLOCKS[m.group(1)]().strip()}\n"
                f"<!-- {m.group(1)}:end -->"
            ),
            text,
        )
        if new != text:
            page.write_text(new)
            changed.append(page)
    return changed


def test_every_marked_block_is_its_sources_text():
    problems = block_problems()
    assert not problems, "\n".join(problems)


def test_every_key_a_page_names_is_its_outputs():
    problems = key_problems()
    assert not problems, "\n".join(problems)


def test_every_line_a_page_copies_is_its_outputs():
    problems = line_problems()
    assert not problems, "\n".join(problems)


def test_every_quoted_figure_is_its_sources():
    problems = figure_problems()
    assert not problems, "figures that differ from the committed outputs:\n" + "\n".join(problems)


if __name__ == "__main__":
    for page in rewrite_blocks():
        print(f"rewrote {page.relative_to(ROOT)}")

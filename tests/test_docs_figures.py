"""Every figure a page quotes from a committed output is that output's.

Two ways to quote, both checked here:
- a marked block, `<!-- NAME:start -->` ... `<!-- NAME:end -->`, whose text is rendered from
  its source by `BLOCKS[NAME]` (the README's sweep table, the benchmark tables, the
  decision's lines). `python tests/test_docs_figures.py` rewrites every block from its
  source after a run changes one; nothing in a block is typed by hand.
- a figure in a sentence: tests/docs_quotes.toml lists each one as the words around it with
  the figure written as a format field over `SOURCES` (`{best[p_vs_rate_0]:.2g}`); the
  rendered text must stand in the page (line breaks count as spaces). The same file lists
  the output keys a page names and the lines it copies verbatim.
When a committed output changes its keys or its files, `SOURCES` and `BLOCKS` below and
tests/docs_quotes.toml are the one place to follow it. Reads files only; imports nothing of
the project, so it runs in the fast tier.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import subprocess
import tomllib
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


def _fine_tuning() -> dict:
    """The fine-tuning demonstration's files (docs/fine-tuning/): the source model's record,
    and per target its decision in brief with every entry's figures by entry name."""
    found = {"source": _json("docs/fine-tuning/source.json")}
    for target in ("similar", "dissimilar"):
        summary = _json(f"docs/fine-tuning/{target}.json")
        found[target] = {**summary, **{e["entry"]: e for e in summary["entries"]}}
    return found


# The names a figure's format field starts with, and the committed output each one reads.
SOURCES: dict[str, Callable[[], dict]] = {
    "best": lambda: _json("reports/best.json"),
    "sweep": _sweep_rows,
    "choosing": lambda: _table_rows("reports/choosing.md"),  # its first table, by entry
    "compute": lambda: _json("benchmarks/compute_results.json"),
    "bench": lambda: _json("benchmarks/results.json"),
    "fine_tuning": _fine_tuning,
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


def _data_size_table(path: str) -> str:
    """The data-size experiment's curve points: per noise and size, rate 0 and the best rate."""
    with (ROOT / path).open() as handle:
        points = {(r["noise"], r["train_size"], r["series"]): r for r in csv.DictReader(handle)}
    rows = [
        "| label noise | rows | rate 0: test error | best rate on validation | its test error |",
        "|---|---|---|---|---|",
    ]
    cells = sorted(
        {(noise, size) for noise, size, _ in points}, key=lambda k: (-float(k[0]), int(k[1]))
    )
    for noise, size in cells:
        plain, best = points[noise, size, "rate 0"], points[noise, size, "best rate"]
        rows.append(
            f"| {noise} | {size} | {float(plain['test_error']):.3f} | {best['l2_rate']} "
            f"| {float(best['test_error']):.3f} |"
        )
    return "\n".join(rows)


def _committed_on(path: str) -> str:
    """The day the file's current content was committed (git's author date)."""
    return subprocess.check_output(
        ["git", "log", "-1", "--format=%as", "--", path], cwd=ROOT, text=True
    ).strip()


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


# The calibration study's settings as docs/regression.md names them, in its order.
CALIBRATION_SETTINGS = {
    "normal": "exchangeable, normal errors",
    "t5": "exchangeable, t(5) errors",
    "t3": "exchangeable, t(3) errors",
    "same_mse_skewed": "same MSE: normal vs t(3)",
    "same_mse_t5": "same MSE: normal vs t(5)",
    "bias_vs_variance": "same MSE: biased vs noisy",
    "friedman_ridge_noise": "make_friedman1: Ridge + exchangeable noise",
    "friedman_mlp_seeds": "make_friedman1: MLP seed 1 vs seed 2",
}


def _calibration_table(path: str) -> str:
    """Rejection rates of the three paired tests per setting and number of rows."""
    results = _json(path)
    sizes = sorted({s["n"] for s in results["settings"]})
    rows = ["| setting | " + " | ".join(f"n = {n}" for n in sizes) + " |",
            "|---|" + "---|" * len(sizes)]  # fmt: skip
    for kind, label in CALIBRATION_SETTINGS.items():
        cells = []
        for n in sizes:
            (found,) = [s for s in results["settings"] if s["kind"] == kind and s["n"] == n]
            rates = [found["rejections"][t] / results["reps"] for t in ("t_test", "sign_flip",
                                                                         "bootstrap")]  # fmt: skip
            cells.append(" / ".join(f"{r:.3f}" for r in rates))
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    low, high = results["band"]
    return "\n".join(rows) + (
        f"\n\n{results['reps']} repetitions per cell; the central 95% of Binomial("
        f"{results['reps']}, {results['alpha']}) is [{low:.3f}, {high:.3f}]. Chosen: "
        f"{results['verdict']['chosen'].replace('_', '-')} (`{path}`)."
    )


def _regression_blocks() -> dict[str, Callable[[], str]]:
    """docs/regression.md's blocks: each table's committed report and reference."""
    blocks: dict[str, Callable[[], str]] = {
        "paired_calibration_results.json": lambda: _calibration_table(
            "benchmarks/paired_calibration_results.json"
        ),
        "regression/diabetes/decision": lambda: _table_columns(
            "docs/regression/diabetes/choosing.md", 8
        ),
    }
    for table in ("diabetes", "penguins", "cars"):
        folder = f"docs/regression/{table}"
        blocks[f"regression/{table}/sweep.md"] = lambda f=folder: _table_columns(
            f"{f}/sweep.md", 10
        )
        blocks[f"regression/{table}/chosen"] = lambda f=folder: _paragraph(
            f"{f}/choosing.md", "**Chosen:"
        )
        blocks[f"regression/{table}/reference.md"] = lambda f=folder: _table_columns(
            f"{f}/reference.md", 12
        )
    return blocks


# Marked blocks: name -> the text the block holds, rendered from its source.
BLOCKS: dict[str, Callable[[], str]] = {
    "sweep.md": lambda: _table_columns("reports/sweep.md", 7),
    "error_vs_train_size.csv": lambda: _data_size_table("docs/choosing/error_vs_train_size.csv"),
    "layers.md": lambda: _table_columns("docs/choosing/layers.md", 7),  # the layer grid's report
    "choosing.md:chosen": lambda: _paragraph("reports/choosing.md", "**Chosen:"),
    "compute_results.json": lambda: _benchmark("benchmarks/compute_results.json"),
    "results.json": lambda: _benchmark("benchmarks/results.json"),
    "reuse_results.json": lambda: _benchmark("benchmarks/reuse_results.json"),
    "ui_links_results.json": lambda: (
        _benchmark("benchmarks/ui_links_results.json")
        + f"\n\n{_json('benchmarks/ui_links_results.json')['conditions']}."
    ),
    **_regression_blocks(),
    # written whole by `python -m pipeline.demos.fine_tuning` (docs/fine-tuning.md)
    "fine-tuning/similar.md": lambda: (ROOT / "docs/fine-tuning/similar.md").read_text(),
    "fine-tuning/dissimilar.md": lambda: (ROOT / "docs/fine-tuning/dissimilar.md").read_text(),
}

QUOTES = ROOT / "tests" / "docs_quotes.toml"  # what each page quotes; see its comments


@cache
def quotes() -> dict:
    with QUOTES.open("rb") as handle:
        return tomllib.load(handle)


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
    for page, templates in quotes()["figures"].items():
        text = (ROOT / page).read_text()
        for template in templates:
            where = f"{page}:{_line_of(text, template)}"
            try:
                expected = rendered(template)
            except LookupError as error:
                found.append(f"{where}: `{template}`: the source has no {error}")
                continue
            if _flat(expected) not in _flat(text):
                found.append(f"{where}: the source gives {expected!r}; the page says otherwise")
    return found


def key_problems() -> list[str]:
    found = []
    for page, outputs in quotes()["keys"].items():
        text = (ROOT / page).read_text()
        for output, keys in outputs.items():
            held = set(json.loads((ROOT / output).read_text()))
            for key in keys:
                if key not in held:
                    line = next((n for n, t in enumerate(text.splitlines(), 1) if key in t), 1)
                    found.append(f"{page}:{line}: names `{key}`, which {output} no longer has")
                elif key not in text and key.replace("_ci_high", "_ci_low/high") not in text:
                    found.append(f"{page}: no longer names `{key}`; drop it from {QUOTES.name}")
    return found


def line_problems() -> list[str]:
    found = []
    for page, outputs in quotes()["lines"].items():
        lines = (ROOT / page).read_text().splitlines()
        for output, opening in outputs.items():
            held = set((ROOT / output).read_text().splitlines())
            copied = [(n, line) for n, line in enumerate(lines, 1) if line.startswith(opening)]
            if not copied:
                found.append(f"{page}: no line starts with {opening!r}; drop it from {QUOTES.name}")
            found += [
                f"{page}:{n}: not a line of {output}: {t}" for n, t in copied if t not in held
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
            lambda m: f"<!-- {m[1]}:start -->\n{BLOCKS[m[1]]().strip()}\n<!-- {m[1]}:end -->", text
        )
        if new != text:
            page.write_text(new)
            changed.append(page)
    return changed


def test_every_marked_block_is_its_sources_text():
    problems = block_problems()
    assert not problems, "\n".join(problems)


def test_every_key_a_page_names_and_line_it_copies_is_its_outputs():
    problems = key_problems() + line_problems()
    assert not problems, "\n".join(problems)


def test_every_quoted_figure_is_its_sources():
    problems = figure_problems()
    assert not problems, "figures that differ from the committed outputs:\n" + "\n".join(problems)


if __name__ == "__main__":
    for page in rewrite_blocks():
        print(f"rewrote {page.relative_to(ROOT)}")

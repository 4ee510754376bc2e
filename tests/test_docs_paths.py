"""Every repository path the docs name exists: in docs/, the READMEs, params.yaml's comments and
the docstrings and comments of pipeline/, builders/ and benchmarks/.

What counts as a path (anything else is prose):
- a link target (`[text](target)`), relative to its page; an anchor must be a heading of the
  page it points into;
- a word with a `/` whose first part is a top-level entry of the repository or an output
  `dvc.yaml` declares (`reports/sweep.md`, `models/<entry>/config.json`), or any `a/b.py`
  (package-relative, as `core/contracts.py`), or a bare `name.py`;
- `tests/test_x.py::test_name`: the file defines that test;
- a dotted name under `pipeline.` or `benchmarks.` (`python -m pipeline.refine`,
  `pipeline.tracking`): a module, or a module and a name it defines.
`<placeholder>` and `*` match any one part. Outputs of the pipeline need not be committed: a
path under an output `dvc.yaml` declares is taken as named. Under `data/raw/` (where users put
their own files, see data/raw/README.md) any file name is an example.

Reads files only, imports nothing of the project, so it runs in the fast tier.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import io
import re
import subprocess
import tokenize
from functools import cache
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
USER_FILES = "data/raw/"  # examples of users' files, not this repository's
# Files a page has the reader write: named, never committed.
EXAMPLES = {
    "builders/wine_net.py": "docs/tutorial.md has the reader write it",
    "pretrained/source.keras": "docs/fine-tuning.md: the demonstration's start model, in its labs",
}
PACKAGE_ROOTS = ("pipeline", "benchmarks")
LINK = re.compile(r"\]\(([^)\s]+)\)")
WORD = re.compile(r"[\w.<>*/-]+")
DOTTED = re.compile(r"\b(?:pipeline|benchmarks)(?:\.\w+)+")
TEST_NAME = re.compile(r"([\w/]+\.py)::(\w+)")  # tests/test_x.py::test_name
SHORT = re.compile(r"`(\w+)\.(\w+)[(`]")  # `towers.fit_towers`: a module by its file's name
DVC_SETTINGS = {"plots.html_template"}  # `dvc config` keys, named like a module's
SUFFIXES = {"json", "yaml", "md", "py", "csv", "lock", "png", "npz", "keras", "toml", "html", "db"}


@cache
def tracked() -> frozenset[str]:
    """The repository's files: git's index where there is one, else what is on disk."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        files = {name for name in out.split("\0") if name and (ROOT / name).exists()}
    except (OSError, subprocess.CalledProcessError):
        files = set()
    if not files:
        skip = (".git", ".venv", ".dvc", "__pycache__")
        files = {
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file() and not any(s in p.parts for s in skip)
        }
    folders = {
        str(Path(f).parents[i].as_posix()) for f in files for i in range(len(Path(f).parts) - 1)
    }
    return frozenset(files | folders)


@cache
def outputs() -> tuple[str, ...]:
    """Every `outs:`, `metrics:` and `plots:` path of dvc.yaml: made by a run, not committed."""
    stages = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())["stages"]
    found = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for item in stage.get(kind, []):
                found.append(next(iter(item)) if isinstance(item, dict) else item)
    return tuple(found)


@cache
def top_level() -> frozenset[str]:
    return frozenset(p.split("/")[0] for p in tracked() | set(outputs()))


def documents() -> list[Path]:
    """The pages and the sources whose comments and docstrings are checked."""
    pages = sorted((ROOT / "docs").rglob("*.md"))
    readmes = sorted(ROOT / p for p in tracked() if p.endswith("README.md"))
    code = sorted(
        p for top in ("pipeline", "builders", "benchmarks") for p in (ROOT / top).rglob("*.py")
    )
    return [*readmes, *pages, ROOT / "params.yaml", *code]


def prose(path: Path, text: str) -> list[tuple[int, str]]:
    """(line number, text) of what a reader reads: all of a page, comments and docstrings."""
    if path.suffix == ".md":
        return list(enumerate(text.splitlines(), 1))
    if path.suffix == ".yaml":
        return [
            (n, line.split("#", 1)[1]) for n, line in enumerate(text.splitlines(), 1) if "#" in line
        ]
    lines: list[tuple[int, str]] = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            lines.append((token.start[0], token.string))
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                lines += [
                    (value.lineno + i, line) for i, line in enumerate(value.value.splitlines())
                ]
    return sorted(lines)


def _exists(name: str, near: Path) -> bool:
    name = name.rstrip("/")
    pattern = re.sub(r"<[^>]*>", "*", name)
    bases = ["", "pipeline/", near.parent.relative_to(ROOT).as_posix() + "/"]
    for base in bases:
        full = (base + pattern).lstrip("/")
        if "*" in full:
            if any(
                fnmatch.fnmatchcase(p, full) and p.count("/") == full.count("/") for p in tracked()
            ):
                return True
        elif full in tracked():
            return True
    if re.fullmatch(r"\w+\.py", name):
        return any(p.rsplit("/", 1)[-1] == name for p in tracked())
    under_output = any(pattern == out or pattern.startswith(out + "/") for out in outputs())
    return under_output or name.startswith(USER_FILES) or name in EXAMPLES


def _is_path(word: str) -> bool:
    if "//" in word or word.startswith(("-", ".")) or ".." in word:
        return False
    if "/" not in word:
        return re.fullmatch(r"\w+\.py", word) is not None
    first = word.split("/")[0]
    if first in top_level():
        return True
    # `core/contracts.py` is pipeline's; `keras/src/...py` is a library's, not ours.
    return (
        re.fullmatch(r"\w+", first) is not None
        and word.endswith(".py")
        and importlib.util.find_spec(first) is None
    )


@cache
def _module_names(module: Path) -> frozenset[str]:
    tree = ast.parse(module.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(names)


def _dotted_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.is_file():
            rest = parts[cut:]
            return (
                not rest or rest[0] in _module_names(module) or (base / f"{rest[0]}.py").is_file()
            )
    return False


@cache
def _modules_by_stem() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for name in tracked():
        if name.endswith(".py") and name.startswith(tuple(f"{r}/" for r in PACKAGE_ROOTS)):
            found.setdefault(Path(name).stem, []).append(ROOT / name)
    return found


@cache
def _params_sections() -> frozenset[str]:
    """`grid.rates`, `train.epochs`: params.yaml's keys, whose sections share names with modules."""
    return frozenset(YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text()))


def _short_problem(stem: str, name: str) -> str | None:
    modules = _modules_by_stem().get(stem)
    named = f"{stem}.{name}"
    if not modules or name in SUFFIXES or stem in _params_sections() or named in DVC_SETTINGS:
        return None
    if any(name in _module_names(m) for m in modules):
        return None
    where = ", ".join(m.relative_to(ROOT).as_posix() for m in modules)
    return f"`{stem}.{name}`: {where} defines no `{name}`"


def _link_problem(target: str, page: Path) -> str | None:
    if re.match(r"[a-z]+:", target):
        return None  # a web address
    file, _, anchor = target.partition("#")
    resolved = (page.parent / file).resolve() if file else page
    if not resolved.exists():
        return f"link to {target}: no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"link to {target}: no heading with anchor #{anchor} in {resolved.relative_to(ROOT)}"
    return None


@cache
def anchors(page: Path) -> frozenset[str]:
    """GitHub's heading anchors: lower case, no punctuation, spaces to hyphens, -1 on repeats."""
    seen: dict[str, int] = {}
    found = set()
    in_code = False
    for line in page.read_text().splitlines():
        in_code ^= line.startswith("```")
        heading = re.match(r"#{1,6} (.*)", line)
        if in_code or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return frozenset(found)


def problems(path: Path, text: str | None = None) -> list[str]:
    """One line per path that `path` (or `text` as if it were there) names and the repository
    does not hold: file:line: what."""
    where = path.relative_to(ROOT).as_posix()
    found = []
    for number, line in prose(path, path.read_text() if text is None else text):
        if path.suffix == ".md":
            for target in LINK.findall(line):
                problem = _link_problem(target, path)
                if problem:
                    found.append(f"{where}:{number}: {problem}")
            line = LINK.sub("]", line)  # a link's target is checked above, as a link
        words = {
            w.rstrip(".,;:*").lstrip("*") for w in WORD.findall(re.sub(r"https?://\S+", "", line))
        }
        for word in sorted(words):
            if _is_path(word) and not _exists(word, path):
                found.append(f"{where}:{number}: `{word}` does not exist")
        for file, name in sorted(set(TEST_NAME.findall(line))):
            if (ROOT / file).is_file() and name not in _module_names(ROOT / file):
                found.append(f"{where}:{number}: `{file}::{name}`: {file} defines no `{name}`")
        for stem, name in sorted(set(SHORT.findall(line))):
            problem = _short_problem(stem, name)
            if problem:
                found.append(f"{where}:{number}: {problem}")
        for dotted in sorted(set(DOTTED.findall(line))):
            if not _dotted_exists(dotted.rstrip(".")):
                found.append(f"{where}:{number}: module or name `{dotted}` does not exist")
    return found


def test_every_path_the_docs_name_exists():
    found = [problem for path in documents() for problem in problems(path)]
    assert not found, "paths named in the docs that do not exist:\n" + "\n".join(found)


def test_the_checker_sees_a_missing_path_a_dead_anchor_and_a_gone_module():
    page = ROOT / "docs" / "_probe.md"
    found = problems(
        page,
        "See `pipeline/gone.py`, [the tests](reliability.md#no-such-heading),\n"
        "[scaling](scaling.md#faults) and `pipeline.tracking.no_such_name`.\n"
        "`tests/test_docs_paths.py::test_gone` and `runner.no_such_helper`.\n",
    )
    assert found == [
        "docs/_probe.md:1: link to reliability.md#no-such-heading: no heading with anchor "
        "#no-such-heading in docs/reliability.md",
        "docs/_probe.md:1: `pipeline/gone.py` does not exist",
        "docs/_probe.md:2: module or name `pipeline.tracking.no_such_name` does not exist",
        "docs/_probe.md:3: `tests/test_docs_paths.py::test_gone`: tests/test_docs_paths.py "
        "defines no `test_gone`",
        "docs/_probe.md:3: `runner.no_such_helper`: pipeline/core/runner.py defines no "
        "`no_such_helper`",
    ]

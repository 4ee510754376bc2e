"""The tests' fixtures, built from `tests.support`: the tiny params, throwaway projects (one
trained once for the whole session), TensorFlow set up once, the compute sweep's reference;
and the check, at collection, that a test using the costly ones is marked slow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.params import tiny_params, write_yaml
from tests.support.project import Project, copy_project, make_project
from tests.support.training import compute_recipe, compute_towers, weights_of


def pytest_configure(config: pytest.Config) -> None:
    """TensorFlow's environment before any test can import it: a test that imports Keras
    without the `tensorflow` fixture (a store filled, a model loaded) would otherwise fix the
    process's oneDNN kernels for every later test, and the bit-exact comparisons with it
    would depend on the order the tests ran in."""
    from pipeline.core.runtime import set_tensorflow_environment

    set_tensorflow_environment()


@pytest.fixture(autouse=True)
def _sys_path_restored():
    """`mlflow.pyfunc.load_model` puts a packaged model's code folder (a partial copy of
    `pipeline`) first on sys.path for good. This process keeps the project's `pipeline`, but
    a worker process it spawns later would import the copy and miss the rest of the lab:
    each test gets the path it started with back."""
    path = list(sys.path)
    yield
    sys.path[:] = path


@pytest.fixture(scope="session")
def tensorflow() -> None:
    """TensorFlow and Keras, started the way a stage starts them (quiet, deterministic,
    oneDNN capped at AVX2). Tests that build or train models use it and import Keras, or a
    `pipeline.modeling` module, inside the test: never at collection."""
    from pipeline.core.runtime import init_tensorflow

    init_tensorflow(seed=0)


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    write_yaml(path, tiny_params())
    return path


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "lab")


@pytest.fixture(scope="session")
def reproduced_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One tiny project on which `dvc repro` ran, shared by the session, and that repro's
    stdout. Never changed: tests work on copies (`reproduced`)."""
    lab = make_project(tmp_path_factory.mktemp("reproduced") / "lab")
    return lab.root, lab.dvc("repro").stdout


@pytest.fixture(scope="session")
def docs_lab_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scratch project the docs' commands run in (tests.support.docs_lab), reproduced
    and committed once per session. Never changed: tests work on copies."""
    from tests.support.docs_lab import make_docs_lab

    return make_docs_lab(tmp_path_factory.mktemp("docs") / "lab").root


@pytest.fixture
def reproduced(reproduced_once: tuple[Path, str], tmp_path: Path) -> Project:
    """A copy of a project after its first `dvc repro` (`copy_project`), to change at will."""
    return copy_project(reproduced_once[0], tmp_path / "lab")


@pytest.fixture(scope="session")
def compute_sweep_recipe(tmp_path_factory: pytest.TempPathFactory):
    """The compute tests' `Recipe` (tests.support.training), its splits prepared once."""
    return compute_recipe(tmp_path_factory.mktemp("compute"))


@pytest.fixture(scope="session")
def compute_reference(tensorflow, compute_sweep_recipe) -> dict:
    """Every tower of the compute sweep, a training set per graph, trained in this process:
    the bits every other placement (group sizes, local workers, Ray) must give."""
    from pipeline.compute import cut_groups, run_groups
    from pipeline.config import ComputeConfig

    tasks = cut_groups(compute_towers(), len(compute_towers()), compute_sweep_recipe)
    assert [len(t.towers) for t in tasks] == [6, 2]
    return weights_of(run_groups(tasks, ComputeConfig(), lambda *_: None))


# Fixtures that run `dvc` (every project is `dvc init`ed) or train the compute sweep.
RUNS_DVC_OR_TRAINS = {
    "project",
    "reproduced",
    "reproduced_once",
    "docs_lab_once",
    "compute_reference",
}


# The modules that take longest, longest first (seconds measured under `-n 2`, 2 cores), then
# every other module with a slow test, then the fast ones: pytest-xdist hands a process the
# next module when it is free (`--dist=loadfile --no-loadscope-reorder`, pipeline/bootstrap.py),
# so a long module started last would run alone at the end. A stale order costs minutes, never
# a result.
LONGEST_FIRST = (
    "test_docs_commands_grids.py",  # 209 s: the layer and data-size grids of choosing-l2.md
    "test_docs_commands.py",  # 196 s: README, tutorial, own data, prose commands
    "test_docs_commands_queue.py",  # 147 s: decision.md's three 5-fold experiments, team.md's
    "test_bench.py",  # 107 s
)


def _schedule_key(item: pytest.Item) -> tuple[int, int]:
    module = item.path.name
    if module in LONGEST_FIRST:
        return 0, LONGEST_FIRST.index(module)
    return (1 if item.get_closest_marker("slow") is not None else 2), 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tiers' rule, checked before any test runs: a test that uses one of those fixtures,
    or is marked `services`, is marked `slow` too, so `-m "not slow"` stays fast. Then the
    longest modules are put first (LONGEST_FIRST), each module's tests kept together."""
    unmarked = [
        item.nodeid
        for item in items
        if item.get_closest_marker("slow") is None
        and (
            item.get_closest_marker("services") is not None
            or RUNS_DVC_OR_TRAINS & set(getattr(item, "fixturenames", ()))
        )
    ]
    if unmarked:
        raise pytest.UsageError(f"mark these tests slow (docs/reliability.md, Tests): {unmarked}")
    first_of_module: dict[Path, tuple[int, int]] = {}
    for item in items:
        # A module goes where its first slow test would: its tests stay in their order.
        key = _schedule_key(item)
        first_of_module[item.path] = min(first_of_module.get(item.path, key), key)
    items.sort(key=lambda item: first_of_module[item.path])

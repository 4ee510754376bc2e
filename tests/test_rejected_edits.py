"""`dvc repro` after a refused edit: one line, a non-zero exit, and nothing lost.

`prepare` depends on the whole of params.yaml, validates all of it and builds a user's model
once, so a mistake anywhere in the file or in a builder stops `dvc repro` before DVC deletes
any stage's outputs; a valid edit that changes nothing a later stage reads reruns nothing
after `prepare`.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from ruamel.yaml import YAML

from tests.support.params import write_yaml
from tests.support.project import ALWAYS_RUN, UP_TO_DATE, Project, mlflow_runs, ran_stages

pytestmark = pytest.mark.slow

KEPT = ("models", "metrics", "evaluation", "reports", "data/prepared")


def _snapshot(project: Project) -> dict:
    """Every file a refused edit must leave alone (by content), dvc.lock and the runs."""
    files = {
        str(path.relative_to(project.root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in KEPT
        for path in sorted((project.root / folder).rglob("*"))
        if path.is_file()
    }
    files["dvc.lock"] = (project.root / "dvc.lock").read_text()
    runs = sorted((run.info.run_id, run.info.status) for run in mlflow_runs(project))
    return {"files": files, "runs": runs}


def _refused(project: Project, params_text: str, expected: str) -> None:
    """`dvc repro` on `params_text` fails in `prepare` with one line containing `expected`."""
    project.params_path.write_text(params_text)
    failed = project.dvc("repro", check=False)
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: prepare: "), failed.stderr
    assert expected in errors[0], errors[0]
    assert set(ran_stages(failed.stdout)) == {"prepare"}, failed.stdout


def _params(project: Project) -> dict:
    return YAML(typ="safe", pure=True).load(project.params_path.read_text())


def test_every_edit_of_params_yaml_is_validated_and_a_valid_one_reruns_nothing_after_prepare(
    reproduced: Project,
):
    project = reproduced
    original = project.params_path.read_text()
    before = _snapshot(project)
    # Sections the stages do not read: before, DVC saw no change at all and said "up to date".
    for added, expected in (
        ("repeat_seeds: [43, 44]\n", "unknown key 'repeat_seeds'; it belongs under its section:"
         " write it as base.repeat_seeds"),
        ("extras:\n  note: 1\n", "unknown key 'extras'; check its spelling"),
    ):  # fmt: skip
        _refused(project, original + added, expected)
        assert _snapshot(project) == before
    # A setting for a source that is not selected (the demo would have trained on digits).
    project.params_path.write_text(original)
    params = _params(project)
    params["data"].update(csv_path="data/raw/mine.csv", target_column="species")
    write_yaml(project.params_path, params)
    _refused(project, project.params_path.read_text(), "data.csv_path is set but data.source")
    assert _snapshot(project) == before
    # Label noise on a quantity, known only once prepare has read the target (issue 27).
    rows = "".join(f"{i},{i * 1.5 + i % 7}\n" for i in range(60))
    (project.root / "data" / "raw" / "prices.csv").write_text("x,price\n" + rows)
    project.params_path.write_text(original)
    params = _params(project)
    params["data"].update(source="csv", csv_path="data/raw/prices.csv", target_column="price")
    params["data"]["label_noise"] = 0.1
    write_yaml(project.params_path, params)
    _refused(project, project.params_path.read_text(), "data.label_noise = 0.1: the target is")
    assert _snapshot(project) == before
    (project.root / "data" / "raw" / "prices.csv").unlink()

    # A comment changes no value: nothing runs.
    project.params_path.write_text("# my first experiment\n" + original)
    result = project.dvc("repro")
    assert ran_stages(result.stdout) == ALWAYS_RUN, result.stdout
    assert _snapshot(project) == before
    # A key only `prepare` reads: it reruns, its splits come out identical, nothing after it
    # runs, and every output is as it was (dvc.lock records the new value).
    params = _params(project)
    params["base"]["experiment"] = "another-name"
    write_yaml(project.params_path, params)
    result = project.dvc("repro")
    assert ran_stages(result.stdout) == {"prepare": "ran", **ALWAYS_RUN}, result.stdout
    after = _snapshot(project)
    assert after["runs"] == before["runs"]
    assert {k: v for k, v in after["files"].items() if k != "dvc.lock"} == {
        k: v for k, v in before["files"].items() if k != "dvc.lock"
    }
    assert json.loads(project.dvc("status", "--json").stdout) == UP_TO_DATE


SUBCLASSED = """import keras


class Net(keras.Model):
    def __init__(self, n_classes):
        super().__init__()
        self.dense = keras.layers.Dense(n_classes, activation="softmax")

    def call(self, x):
        return self.dense(keras.layers.Flatten()(x))


def build(input_shape, n_classes):
    return Net(n_classes)
"""


def test_a_builder_mistake_is_refused_before_train_loses_anything(reproduced: Project):
    project = reproduced
    before = _snapshot(project)
    (project.root / "builders" / "subclassed.py").write_text(SUBCLASSED)
    params = _params(project)
    params["data"]["shape"] = "image"  # the example convnet takes 8x8x1 digits
    for builder, sweep, expected in (
        ("builders/example.py:small_convnt", {"plain": {"l2": 0.0}},
         "example.py has no function 'small_convnt'; it defines"),
        ("builders/subclassed.py:build", {"plain": {"l2": 0.0}},
         "returned a subclassed model (Net), which Keras cannot clone"),
        ("builders/example.py:small_convnet", {"bad": {"l2": {"pool*": 0.1}}},
         "sweep.bad.l2: 'pool*' matches no regularizable layer; the layers are conv_stem"),
    ):  # fmt: skip
        params["model"]["builder"] = builder
        params["sweep"] = sweep
        write_yaml(project.params_path, params)
        _refused(project, project.params_path.read_text(), expected)
        assert _snapshot(project) == before
        assert not list(project.root.glob("*.partial"))

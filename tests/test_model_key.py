"""A model's key moves with every input its bytes depend on, and only with those.

The key is meant to fail closed: every setting of `params.yaml` is in it unless the
allow-list (model_store.key.NOT_IN_KEY) says why not. So this walks every setting rather
than a hand-kept list: a setting added to the schema later is checked without a new test.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from pipeline.compute.groups import REFIT
from pipeline.config import BuilderRef, load_config, resolve_entries
from pipeline.model_store import key as model_key
from pipeline.model_store.key import Fingerprint, digest_of, ingredients
from tests.support.params import ROOT, tiny_params, write_yaml

pytestmark = pytest.mark.usefixtures("tensorflow")  # the environment's versions


def _leaves(settings: dict, prefix: str = ""):
    for name, value in settings.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{path}.")
        else:
            yield path, value


# Values the generic change below cannot make (a choice among names, a number where the
# default is null). A setting missing here that the schema refuses fails the test: add it.
OTHER_VALUE = {
    "base.repeat_seeds": [7],
    "data.image_size": [16, 16],
    "data.color_mode": "rgb",
    "data.shape": "flat",
    "data.scaling": "standard",
    "data.task": "classification",  # regression is refused for the digits
    "model.builder": "cnn",
    "model.hidden_units": [16, 8],
    "model.activation": "relu",
    "model.cnn.activation": "tanh",
    "choose.rule": "one_se",
    "choose.folds": 3,
}
# Settings that only take effect with a file of the user's: checked to be in the key's
# settings as they are, not changed.
NEED_A_FILE = ("data.source", "data.csv_path", "data.target_column", "data.image_dir",
               "data.npz_path", "data.train_subset", "data.label_noise",
               "data.drop_columns",
               # A start model's file (model.new_head needs one too).
               "model.start_from", "model.new_head")  # fmt: skip


def _changed(path: str, value):
    """Another valid value of the same kind."""
    if path in OTHER_VALUE:
        return OTHER_VALUE[path]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.125
    if isinstance(value, list):
        return [*value, value[-1]]
    return f"{value}x"


@pytest.fixture
def lab(tmp_path: Path):
    """A project with tiny params and prepared-looking data, and a function from params to
    the first entry's key."""
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    (prepared / "train.npz").write_bytes(b"rows")

    def key_of(params: dict, entry: str = "plain", seed: int | None = None, rows=None) -> str:
        path = tmp_path / "params.yaml"
        write_yaml(path, params)
        config = load_config(path)
        layers = ("hidden_1", "hidden_2", "output")  # the tiny MLP's, also for a builder
        spec = next(e for e in resolve_entries(config, layers) if e.name == entry)
        builder = BuilderRef.of_params(config.model, path)
        fingerprint = Fingerprint.of(config, prepared, builder)
        return digest_of(ingredients(fingerprint, config, spec, seed or config.base.seed, rows))

    return tmp_path, prepared, key_of


def test_every_setting_outside_the_allow_list_moves_the_key(lab):
    """The fail-closed rule itself: each leaf of the resolved configuration, changed alone,
    moves the key, except the allow-listed ones, which never do."""
    _, _, key_of = lab
    params = tiny_params()
    base = key_of(params)
    config = load_config(ROOT / "params.yaml")
    settings = model_key.without(config.model_dump(mode="json"), ("sweep", "grid"))
    unmoved, refused = [], []
    for path, value in _leaves(settings):
        if path in NEED_A_FILE:
            continue
        edited = json.loads(json.dumps(params))
        node = edited
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _changed(path, node.get(leaf, value))
        try:
            moved = key_of(edited) != base
        except Exception as error:  # any refusal, reported below
            refused.append(f"{path} = {node[leaf]!r}: {error}")
            continue
        allowed = any(path == a or path.startswith(f"{a}.") for a in model_key.NOT_IN_KEY)
        if moved == allowed:
            unmoved.append((path, moved))
    assert not refused, "add another value to OTHER_VALUE:\n" + "\n".join(refused)
    assert not unmoved, f"settings whose key does not follow the allow-list: {unmoved}"
    in_key = model_key.without(config.model_dump(mode="json"), model_key.NOT_IN_KEY)
    for path in NEED_A_FILE:
        section, name = path.split(".")
        assert name in in_key[section], path


def test_the_entry_seed_and_training_rows_move_the_key_and_its_name_does_not(lab):
    _, _, key_of = lab
    params = tiny_params()
    base = key_of(params)
    assert key_of(params, seed=7) != base
    assert key_of(params, rows=("fold", 0)) != base
    assert key_of(params, rows=("fold", 0)) != key_of(params, rows=("fold", 1))
    # The number of folds decides a fold's rows, and nothing else's.
    folded = tiny_params()
    folded["choose"]["folds"] = 3
    assert key_of(folded, rows=("fold", 0)) != key_of(params, rows=("fold", 0))
    assert key_of(folded) == base
    assert key_of(folded, rows=REFIT) == key_of(params, rows=REFIT)
    assert key_of(params, rows=REFIT) != base
    assert key_of(params, rows=(40, 0.1)) != key_of(params, rows=(40, 0.2))
    for change in ({"l2": 0.5}, {"weight_decay": 0.01}, {"train_size": 30},
                   {"label_noise": 0.1}):  # fmt: skip
        edited = tiny_params()
        edited["sweep"]["plain"].update(change)
        assert key_of(edited) != base, change
    # Another entry of the same settings shares the model; others entries do not matter.
    renamed = tiny_params()
    renamed["sweep"]["twin"] = dict(renamed["sweep"]["plain"])
    renamed["sweep"]["extra"] = {"l2": 0.3}
    assert key_of(renamed, entry="twin") == base == key_of(renamed)


def test_the_data_builder_files_code_and_environment_move_the_key(lab, monkeypatch):
    root, prepared, key_of = lab
    params = tiny_params()
    base = key_of(params)
    (prepared / "train.npz").write_bytes(b"other rows")
    assert key_of(params) != base
    (prepared / "train.npz").write_bytes(b"rows")
    assert key_of(params) == base

    (root / "builders").mkdir()
    (root / "builders" / "mine.py").write_text("def build(): ...\n")
    (root / "builders" / "helpers.py").write_text("WIDTH = 8\n")
    own = tiny_params()
    own["model"]["builder"] = "builders/mine.py:build"
    with_builder = key_of(own)
    (root / "builders" / "helpers.py").write_text("WIDTH = 16\n")  # a file the builder imports
    assert key_of(own) != with_builder

    # The training code by content: a copy of the package with one byte more in one module.
    package = root / "package"
    for part in model_key.TRAINING_CODE:
        source = model_key._PACKAGE / part
        target = package / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            target.write_bytes(source.read_bytes())
        else:
            for file in source.rglob("*.py"):
                (target / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                (target / file.relative_to(source)).write_bytes(file.read_bytes())
    monkeypatch.setattr(model_key, "_PACKAGE", package)
    assert key_of(params) == base
    with (package / "modeling" / "towers.py").open("a") as handle:
        handle.write("\n")
    assert key_of(params) != base
    monkeypatch.undo()

    for name, value in (("tensorflow", "0.0"), ("keras", "0.0"), ("numpy", "0.0"),
                        ("python", "0.0"), ("cpu_isa", "SSE41")):  # fmt: skip
        real = model_key.environment

        def other(name=name, value=value, real=real):
            return {**real(), name: value}

        monkeypatch.setattr(model_key, "environment", other)
        assert key_of(params) != base, name
        monkeypatch.undo()


def test_a_regression_and_a_classifier_of_the_same_settings_and_rows_differ(lab):
    """The task is in the key through the prepared data: meta.json says regression (and the
    target's statistics) where a classifier's says nothing, even when `data.task` is `auto`
    for both and every other prepared byte were the same."""
    from pipeline.core import contracts

    _, prepared, key_of = lab
    params = tiny_params()
    assert params["data"].get("task", "auto") == "auto"
    common = {"source": "csv", "n_features": 4, "rows": {"train": 8, "val": 4, "test": 4},
              "train_labels_flipped": 0, "input_shape": (4,)}  # fmt: skip
    contracts.write_meta(prepared, contracts.PreparedMeta(class_names=("a", "b"), **common))
    classifier = key_of(params)
    regression = contracts.PreparedMeta(
        class_names=(), task="regression", target_mean=3.0, target_std=2.0, **common
    )
    contracts.write_meta(prepared, regression)
    regression_key = key_of(params)
    assert regression_key != classifier
    # The target's std alone moves it too: a stored history holds RMSEs in the target's units.
    contracts.write_meta(prepared, dataclasses.replace(regression, target_std=4.0))
    assert key_of(params) not in (classifier, regression_key)


def test_the_instruction_set_follows_the_onednn_cap(monkeypatch):
    flags = {"sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"}
    monkeypatch.setattr(model_key, "cpu_flags", lambda: flags)
    monkeypatch.setattr(model_key.platform, "machine", lambda: "x86_64")
    for cap, isa in (("AVX2", "AVX2"), ("SSE41", "SSE41"), ("AVX512_CORE", "AVX512_CORE")):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert model_key.effective_cpu_isa() == isa
    # Without a cap, a CPU with AVX-512 may run kernels beyond the ladder: its whole
    # description, never a shared rung.
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert "avx512f" in model_key.effective_cpu_isa()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setattr(model_key, "cpu_flags", lambda: {"sse4_1", "avx"})  # an old CPU
    assert model_key.effective_cpu_isa() == "AVX"


def test_the_training_code_is_what_the_train_stage_depends_on():
    """TRAINING_CODE and dvc.yaml's `train` deps under pipeline/ (MLflow's aside) agree, so
    a module added to the training path is keyed as soon as DVC reruns `train` for it."""
    stages = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())["stages"]
    deps = {d.removeprefix("pipeline/") for d in stages["train"]["deps"]
            if d.startswith("pipeline/")}  # fmt: skip
    assert deps - {"tracking", "model_folders.py"} == set(model_key.TRAINING_CODE)


def test_a_fingerprint_is_plain_data():
    """It travels in the key's JSON: nothing in it may be an object whose text varies."""
    fields = {f.name for f in dataclasses.fields(Fingerprint)}
    assert fields == {"settings", "data", "builder_files", "code", "environment", "start_file"}


def test_a_model_made_on_another_node_is_stored_under_that_nodes_key():
    """A Ray node or worker with another instruction set makes other bits: its model's key
    is its own environment's, so a stage on this machine never takes it for its own."""
    from pipeline.compute.work import environment as node_environment

    here = node_environment()
    wanted = {"settings": {}, "environment": model_key.environment()}
    assert model_key.as_trained_on(wanted, here) == wanted
    elsewhere = model_key.as_trained_on(wanted, {**here, "cpu_isa": "SSE41"})
    assert digest_of(elsewhere) != digest_of(wanted)

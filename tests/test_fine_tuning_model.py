"""Fine-tuning's models, with real Keras: every tower that starts from a start model (or its
architecture, from scratch) ends with exactly the weights of the same model trained alone
(max |difference| == 0), with a fitting head, a new head and a regression's new head; a frozen
part (a BatchNormalization included) keeps its weights and moving statistics; the L2-SP term is
rate * Σ(w - w0)²; the saved file is the plain network; and evaluate's `l2_penalty` of the
loaded file is Keras's own regularization term of the trained model."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from pipeline.core.runtime import init_tensorflow
from pipeline.core.task import CLASSIFICATION_TASK, REGRESSION_TASK
from tests.support.params import write_yaml
from tests.support.start_models import (
    build,
    fine_tuning_params,
    resolved,
    save_start_model,
)
from tests.support.training import fit_alone, fit_fused, prepared_splits, regression_splits

# Builds and trains Keras models: TensorFlow starts once, from the `tensorflow` fixture.
pytestmark = pytest.mark.usefixtures("tensorflow")

EPOCHS = 3
SEED = 7
# Keras sums a penalty in float32, numpy here in float64: they agree to float32 rounding.
FLOAT32_RTOL = 1e-6


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tensorflow):
    """A project folder with the tiny params' prepared digits, a start model whose head fits
    (10 classes), one whose head does not (5 classes), and one for a regression (a 3-class
    head on 8 features)."""
    root = tmp_path_factory.mktemp("fine_tuning")
    splits = prepared_splits(root)
    save_start_model(root / "pretrained" / "source.keras")
    save_start_model(root / "pretrained" / "five.keras", 5)
    save_start_model(root / "pretrained" / "regress.keras", 3, n_features=8)
    return root, splits


def _resolved(root, params, shape=(64,), n_outputs=10, task=CLASSIFICATION_TASK):
    write_yaml(root / "params.yaml", params)
    return resolved(root / "params.yaml", shape, n_outputs, task)


def _trained_fused_and_alone(lab, params):
    """The entries' towers trained fused, and each trained alone; (builder, layers, entries,
    fused models by name, alone models by name, the fused models' weights before training)."""
    from pipeline.modeling.towers import Tower

    root, splits = lab
    builder, layers, entries = _resolved(root, params)
    init_tensorflow(0)  # a different global seed: the towers must not depend on it
    towers = [Tower(build(builder, e, (64,), 10, CLASSIFICATION_TASK, SEED), SEED, 0.0)
              for e in entries]  # fmt: skip
    before = {t.model.name: [w.copy() for w in t.model.get_weights()] for t in towers}
    epochs: list[dict] = []
    outcome = fit_fused(towers, splits, epochs=EPOCHS,
                        sinks=[lambda epoch, per_tower: epochs.append(per_tower)])  # fmt: skip
    assert outcome.diverged_at_epoch == {}
    # The epochs' penalty is the towers' `losses`: the pull toward the start included.
    last = epochs[-1]
    assert last["tuned"]["l2_penalty"] == 0.0 and last["held"]["l2_penalty"] > 0
    alone = {}
    for entry in entries:
        init_tensorflow(SEED)
        alone[entry.name] = build(builder, entry, (64,), 10, CLASSIFICATION_TASK, SEED)
        fit_alone(alone[entry.name], splits, entry=entry.name, seed=SEED, epochs=EPOCHS)
    return builder, layers, entries, {t.model.name: t.model for t in towers}, alone, before


@pytest.fixture(scope="module")
def fitting_head(lab):
    return _trained_fused_and_alone(lab, fine_tuning_params())


def test_every_fine_tuning_tower_equals_its_model_trained_alone(fitting_head):
    from tests.support.reference import max_weight_difference

    _, layers, entries, fused, alone, _ = fitting_head
    assert layers.with_start == ("hidden_1", "hidden_2", "output")
    assert sorted(e.name for e in entries) == ["frozen", "held", "mixed", "scratch", "tuned"]
    for entry in entries:
        assert max_weight_difference(fused[entry.name], alone[entry.name]) == 0.0, entry.name


def test_a_frozen_batchnorm_keeps_its_statistics_and_an_unfrozen_one_moves(fitting_head, lab):
    import keras

    _, _, entries, fused, _, _ = fitting_head
    start = keras.saving.load_model(lab[0] / "pretrained" / "source.keras", compile=False)
    frozen, tuned = fused["frozen"], fused["tuned"]
    for name in ("hidden_1", "bn"):
        assert not frozen.get_layer(name).trainable
        for now, then in zip(
            frozen.get_layer(name).get_weights(), start.get_layer(name).get_weights(), strict=True
        ):
            assert np.array_equal(now, then), name
    # gamma, beta, moving mean, moving variance: all four move when the layer trains.
    for now, then in zip(
        tuned.get_layer("bn").get_weights(), start.get_layer("bn").get_weights(), strict=True
    ):
        assert not np.array_equal(now, then)
    # The layers after the frozen part train.
    trained = np.asarray(frozen.get_layer("hidden_2").kernel)
    assert not np.array_equal(trained, start.get_layer("hidden_2").get_weights()[0])
    assert {e.name: e.tuning.frozen for e in entries}["frozen"] == ("hidden_1", "bn")


def test_the_towers_start_from_the_file_except_the_scratch_entry(fitting_head, lab):
    import keras

    _, _, _, _, _, before = fitting_head
    start = keras.saving.load_model(lab[0] / "pretrained" / "source.keras", compile=False)
    for name in ("tuned", "held", "mixed", "frozen"):
        assert all(np.array_equal(a, b) for a, b in
                   zip(before[name], start.get_weights(), strict=True)), name  # fmt: skip
    assert not np.array_equal(before["scratch"][0], start.get_weights()[0])


def _sp_term(model, w0, sp_rates) -> float:
    from pipeline.modeling.regularize import kernel_arrays

    now = kernel_arrays(model)
    return sum(
        rate * float(np.sum((now[n].astype(np.float64) - w0[n].astype(np.float64)) ** 2))
        for n, rate in sp_rates
    )


def _keras_term(model) -> float:
    """The regularization term Keras adds to the loss: its `losses`, summed."""
    return float(sum(float(np.asarray(loss)) for loss in model.losses))


def test_the_l2_sp_term_is_rate_times_the_squared_distance_from_the_start(lab, fitting_head):
    builder, layers, entries, fused, _, _ = fitting_head
    from pipeline.core import contracts
    from pipeline.modeling.metrics import start_kernels

    meta = contracts.read_meta(lab[0] / "prepared")
    w0 = start_kernels(builder, meta, 0, layers.with_start)
    held = {e.name: e for e in entries}["held"]
    assert held.tuning.sp_rates == (("hidden_1", 0.01), ("hidden_2", 0.01), ("output", 0.01))
    fresh = build(builder, held, (64,), 10, CLASSIFICATION_TASK, SEED)
    assert [float(np.asarray(loss)) for loss in fresh.losses] == [0.0, 0.0, 0.0]
    trained = _keras_term(fused["held"])
    assert trained > 0
    assert trained == pytest.approx(_sp_term(fused["held"], w0, held.tuning.sp_rates),
                                    rel=FLOAT32_RTOL)  # fmt: skip


def test_evaluates_l2_penalty_of_the_saved_file_is_kerass_own_term(lab, fitting_head, tmp_path):
    """Saved, the network carries Keras's L2 only: evaluate adds the l2_sp part back from the
    entry's rates and the start kernels, and the whole equals the trained model's `losses`."""
    import keras

    from pipeline.core import contracts, stable_bytes
    from pipeline.modeling.metrics import StartPoint, model_metrics, start_kernels
    from pipeline.modeling.regularize import l2_penalty, saved_as_plain_network

    root, splits = lab
    builder, layers, entries, fused, _, _ = fitting_head
    meta = contracts.read_meta(root / "prepared")
    w0 = start_kernels(builder, meta, 0, layers.with_start)
    for entry in entries:
        model = fused[entry.name]
        path = tmp_path / f"{entry.name}.keras"
        with saved_as_plain_network(model):
            stable_bytes.save_keras_model(model, path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        start = StartPoint(w0, dict(entry.tuning.sp_rates)) if entry.tuning.from_start else None
        figures = model_metrics(loaded, splits, meta=meta, start=start, tanh_shares=False)
        assert figures["l2_penalty"] == pytest.approx(_keras_term(model), rel=FLOAT32_RTOL)
        if start is None:
            assert not any(k.startswith(("sq_dist", "rel_dist", "l2_sp")) for k in figures)
            continue
        plain = l2_penalty(loaded)
        assert figures["l2_sp_penalty"] == pytest.approx(figures["l2_penalty"] - plain)
        for layer in layers.with_start:
            distance = float(np.sum((np.asarray(loaded.get_layer(layer).kernel, np.float64)
                                     - w0[layer]) ** 2))  # fmt: skip
            assert figures[f"sq_dist_{layer}"] == distance
            assert figures[f"rel_dist_{layer}"] == pytest.approx(
                np.sqrt(distance) / np.linalg.norm(w0[layer].astype(np.float64)), rel=1e-12
            )
        assert figures["sum_sq_dist"] == pytest.approx(
            sum(figures[f"sq_dist_{n}"] for n in layers.with_start), rel=1e-12
        )
    frozen = model_metrics(keras.saving.load_model(tmp_path / "frozen.keras"), splits,
                           meta=meta, start=StartPoint(w0, {}), tanh_shares=False)  # fmt: skip
    assert frozen["sq_dist_hidden_1"] == 0.0 and frozen["sq_dist_hidden_2"] > 0


def test_a_new_head_replaces_the_output_and_trains_as_alone(lab):
    """A start model with 5 classes on the 10-class digits: its output layer is a fresh Dense
    of the same name, seeded by the entry; `l2_sp` with a number leaves it out."""
    from tests.support.reference import max_weight_difference

    sweep = {"held": {"l2_sp": 0.01, "l2": {"output": 0.001}}, "tuned": {},
             "scratch": {"start_from": None}}  # fmt: skip
    params = fine_tuning_params(sweep, start="pretrained/five.keras")
    _, layers, entries, fused, alone, before = _trained_fused_and_alone(lab, params)
    assert layers.regularizable == ("hidden_1", "hidden_2", "output")
    assert layers.with_start == ("hidden_1", "hidden_2")
    assert {e.name: e.tuning.sp_rates for e in entries}["held"] == (
        ("hidden_1", 0.01), ("hidden_2", 0.01))  # fmt: skip
    head = fused["held"].get_layer("output")
    assert head.units == 10 and head.activation.__name__ == "softmax"
    for entry in entries:
        assert max_weight_difference(fused[entry.name], alone[entry.name]) == 0.0, entry.name
    # The head is drawn from the entry's seed: the same for every entry with that seed.
    assert np.array_equal(before["held"][-2], before["tuned"][-2])


def test_a_regression_targets_new_head_is_one_linear_unit_and_trains_as_alone(lab):
    from pipeline.config.schema import TrainConfig
    from pipeline.modeling.objective import Objective
    from pipeline.modeling.towers import Tower, fit_towers
    from tests.support.reference import max_weight_difference, train_alone

    root, _ = lab
    data, std = regression_splits()
    sweep = {"held": {"l2_sp": 0.01, "l2": {"output": 0.001}}, "frozen": {"freeze": ["hidden_*"]},
             "scratch": {"start_from": None}}  # fmt: skip
    params = fine_tuning_params(sweep, start="pretrained/regress.keras")
    builder, layers, entries = _resolved(root, params, (8,), 1, REGRESSION_TASK)
    assert layers.with_start == ("hidden_1", "hidden_2")
    settings = TrainConfig(learning_rate=0.01, batch_size=16, epochs=EPOCHS)
    init_tensorflow(0)
    towers = [Tower(build(builder, e, (8,), 1, REGRESSION_TASK, SEED), SEED, 0.0)
              for e in entries]  # fmt: skip
    head = towers[0].model.get_layer("output")
    assert head.units == 1 and head.activation.__name__ == "linear"
    outcome = fit_towers(towers, data["train"], data["val"], settings, sinks=[],
                         objective=Objective(REGRESSION_TASK, std))  # fmt: skip
    assert outcome.diverged_at_epoch == {}
    for entry, tower in zip(entries, towers, strict=True):
        init_tensorflow(SEED)
        model = build(builder, entry, (8,), 1, REGRESSION_TASK, SEED)
        train_alone(model, data["train"], data["val"], settings, seed=SEED, entry=entry.name,
                    task=REGRESSION_TASK, target_std=std)  # fmt: skip
        assert max_weight_difference(tower.model, model) == 0.0, entry.name


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_saved_file_is_the_plain_network_with_no_copy_of_the_start(fitting_head, tmp_path):
    from pipeline.core import stable_bytes
    from pipeline.modeling.regularize import TowardStart, saved_as_plain_network

    _, _, _, fused, _, _ = fitting_head
    mixed, tuned = fused["mixed"], fused["tuned"]
    assert any(isinstance(layer.kernel_regularizer, TowardStart)
               for layer in mixed.layers if hasattr(layer, "kernel_regularizer"))  # fmt: skip
    for name, model in (("mixed", mixed), ("tuned", tuned)):
        with saved_as_plain_network(model):
            stable_bytes.save_keras_model(model, tmp_path / f"{name}.keras")
    # The graph keeps its pull toward the start after saving.
    assert isinstance(mixed.get_layer("hidden_1").kernel_regularizer, TowardStart)
    with zipfile.ZipFile(tmp_path / "mixed.keras") as archive:
        config = archive.read("config.json").decode()
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    with zipfile.ZipFile(tmp_path / "tuned.keras") as archive:
        plain_sizes = {info.filename: info.file_size for info in archive.infolist()}
    assert "TowardStart" not in config and "l2_sp" not in config
    regularizers = [
        node[key] for node in _walk(json.loads(config)) for key in node
        if key.endswith("_regularizer") and node[key] is not None
    ]  # fmt: skip
    # The head's 0.001 is the only L2 left: hidden_* carry L2-SP alone, saved as nothing.
    assert [(r["class_name"], r["config"]) for r in regularizers] == [("L2", {"l2": 0.001})]
    # No w0: the weights file is as large as the unregularized tower's, and the config small.
    assert sizes["model.weights.h5"] == plain_sizes["model.weights.h5"]
    assert len(config) < 10_000


def test_the_saved_file_loads_without_the_labs_code_with_the_same_predictions(
    fitting_head, lab, tmp_path
):
    from pipeline.core import stable_bytes
    from pipeline.modeling.regularize import saved_as_plain_network

    _, splits = lab
    _, _, _, fused, _, _ = fitting_head
    model = fused["frozen"]
    with saved_as_plain_network(model):
        stable_bytes.save_keras_model(model, tmp_path / "model.keras")
    np.save(tmp_path / "features.npy", splits["val"].features)
    expected = np.asarray(model(splits["val"].features, training=False))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    script = (
        "import sys, numpy as np, keras\n"
        "m = keras.saving.load_model('../model.keras', safe_mode=True)\n"
        "np.save('../predicted.npy', np.asarray(m(np.load('../features.npy'), training=False)))\n"
        "assert not [n for n in sys.modules if n.split('.')[0] == 'pipeline'], 'lab imported'\n"
        "print([l.name for l in m.layers if not l.trainable])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=outside, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['hidden_1', 'bn']"
    assert np.array_equal(np.load(tmp_path / "predicted.npy"), expected)


@pytest.mark.slow  # spawns a worker process
def test_a_fine_tuning_group_gives_the_same_bits_in_a_worker(lab):
    from pipeline.compute import ModelTask, Recipe, cut_groups, run_groups
    from pipeline.config import ComputeConfig
    from pipeline.config.schema import TrainConfig
    from tests.support.training import max_difference, weights_of

    root, _ = lab
    builder, _, entries = _resolved(root, fine_tuning_params())
    recipe = Recipe(
        builder=builder, input_shape=(64,), n_classes=10, prepared_dir=root / "prepared",
        base_seed=SEED, train=TrainConfig(learning_rate=0.01, batch_size=16, epochs=EPOCHS),
        task=CLASSIFICATION_TASK.name,
    )  # fmt: skip
    towers = [
        (ModelTask(e.name, tuple(e.layer_rates), SEED, 0.0, e.tuning), None) for e in entries
    ]
    tasks = cut_groups(towers, len(towers), recipe)
    here = weights_of(run_groups(tasks, ComputeConfig(), lambda *_: None))
    worker = weights_of(run_groups(tasks, ComputeConfig(workers=1), lambda *_: None))
    assert sorted(here) == sorted(e.name for e in entries)
    assert max_difference(here, worker) == 0.0

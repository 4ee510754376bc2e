"""The fine-tuning demonstration's parts that need no training: its tasks, its sweep's
params (valid for the lab's own schema), and how it reads a lab's outputs into its tables,
evaluate's distance metrics included (tests/test_fine_tuning_demo.py runs the whole)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.config.schema import LabConfig
from pipeline.demos import digit_tasks, results, sweep_design, tables
from tests.support.params import ROOT


def test_the_tasks_split_the_digits_and_the_control_permutes_one_fixed_way():
    source = digit_tasks.source_task()
    similar, dissimilar = digit_tasks.target_tasks(sweep_design.SEED)
    assert set(source.labels) == {0, 1, 2, 3, 4}
    assert set(similar.labels) == {5, 6, 7, 8, 9}
    assert len(source.labels) + len(similar.labels) == 1797  # every image, once
    order = digit_tasks.pixel_permutation(sweep_design.SEED)
    assert np.array_equal(order, digit_tasks.pixel_permutation(sweep_design.SEED))
    assert not np.array_equal(order, np.arange(64))
    assert np.array_equal(dissimilar.features, similar.features[:, order])
    assert np.array_equal(dissimilar.labels, similar.labels)
    assert similar.features.min() >= 0.0 and similar.features.max() == 1.0


def test_the_entries_name_their_approach_and_rate():
    assert [sweep_design.rate_name(r) for r in (0.0, 1e-4, 1e-2, 0.1, 1.0)] == [
        "0", "1e_4", "1e_2", "1e_1", "1e0"
    ]  # fmt: skip
    found = {e.name: e for e in sweep_design.entries(sweep_design.FULL)}
    assert found["scratch_1e_3"].params == {"start_from": None, "l2": 1e-3}
    assert found["finetune"].params == {} and found["finetune"].rate is None
    assert found["l2sp_1e_1"].params == {"l2_sp": 0.1}
    assert found["freeze_1e_2"].params == {"freeze": ["hidden_*"], "l2": 1e-2}
    approaches = {a for a, *_ in sweep_design.APPROACHES}
    assert {e.approach for e in found.values()} == approaches


def test_the_lab_params_are_valid_and_pool_the_labelled_rows():
    default = json.loads(json.dumps(_params()))
    for size in (sweep_design.FULL, sweep_design.QUICK):
        params = sweep_design.lab_params(default, size, target_rows=896, n_classes=5)
        config = LabConfig(**params)  # the lab's own schema, strict
        assert config.model.start_from == sweep_design.START_FILE and config.model.new_head
        assert config.choose.folds == size.folds
        # scikit-learn's split of 896 rows: 448 test, then this fraction of the 448 others
        rest = 448
        validation = int(np.ceil(config.data.val_fraction / 0.5 * rest))
        assert validation + config.data.train_subset == size.labelled_per_class * 5
        assert config.sweep["scratch_0"].from_scratch


def _params() -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())


def _lab(folder: Path, entries, distances: dict[str, dict]) -> Path:
    """A lab's refit/decision.json, metrics/ and evaluation/ as refit and evaluate write them."""
    names = [e.name for e in entries]
    values = {name: 0.5 - 0.01 * i for i, name in enumerate(names)}
    chosen = names[-1]

    def candidate(name):
        return {"name": name, "value": values[name], "se": 0.05, "rates": None}

    comparisons = [
        {"other": candidate(n), "p_adjusted": 0.01 * (i + 1), "apart": i == 0, "test": {}}
        for i, n in enumerate(n for n in names if n != chosen)
    ]
    refit = {"train_rows": 50, "test_rows": 448, "test_value": 0.2, "test_ci_low": 0.17,
             "test_ci_high": 0.24}  # fmt: skip
    decision = {
        "choice": {"chosen": candidate(chosen), "rule": "min"},
        "comparisons": comparisons,
        "figure": "cv_error_mean", "folds": 5, "n_rows": 50, "test_rows": 448,
        "test": "exact McNemar", "correction": "Holm", "alpha": 0.05, "refit": refit,
    }  # fmt: skip
    (folder / "refit").mkdir(parents=True)
    (folder / "refit" / "decision.json").write_text(json.dumps({"decision": decision}))
    (folder / "metrics").mkdir()
    (folder / "evaluation").mkdir()
    for i, name in enumerate(names):
        metrics = {"test_error": round((100 + i) / 448, 5)}
        (folder / "metrics" / f"{name}.json").write_text(json.dumps(metrics))
        # per seed, the base seed's among others: only its figures are the entry's
        seeds = [{"seed": seed, "metrics": {"test_error": 0.3, **distances.get(name, {})}}
                 for seed in (sweep_design.SEED, sweep_design.SEED + 1)]  # fmt: skip
        seeds[1]["metrics"] = {k: v * 2 for k, v in seeds[1]["metrics"].items()}
        details = {"entry": name, "seeds": seeds[::-1]}
        (folder / "evaluation" / f"{name}.json").write_text(json.dumps(details))
    return folder


def test_figures_come_from_the_decision_and_the_metrics(tmp_path: Path):
    entries = sweep_design.entries(sweep_design.QUICK)
    moved = {"sq_dist_hidden_1": 2.5, "rel_dist_hidden_1": 0.125, "sq_dist_hidden_2": 1.0,
             "rel_dist_hidden_2": 0.0625, "sum_sq_dist": 3.5, "l2_sp_penalty": 0.35}  # fmt: skip
    lab = _lab(tmp_path, entries, {"l2sp_1e_1": moved})
    found = results.entry_results(lab, "similar", entries)
    by_name = {r.entry: r for r in found}
    assert by_name["freeze_0"].chosen and by_name["freeze_0"].holm_p is None
    assert by_name["scratch_0"].told_apart and not by_name["finetune"].told_apart
    assert by_name["scratch_0"].cv_error == 0.5 and by_name["finetune"].holm_p == 0.02
    assert by_name["l2sp_1e_1"].test_error == round(103 / 448, 5)
    assert by_name["l2sp_1e_1"].distances == moved
    assert by_name["l2_1e_2"].distances == {}
    # Wilson's score interval of 103 of 448 rows, worked out by hand: 0.19334 to 0.27107
    low, high = by_name["l2sp_1e_1"].test_ci_low, by_name["l2sp_1e_1"].test_ci_high
    assert (round(low, 5), round(high, 5)) == (0.19334, 0.27107)
    page = tables.target_page(found, results.summary(lab, "similar", found))
    assert "| fine-tuned, L2-SP | 0.1 | l2sp_1e_1 | 0.470 ± 0.050 | 0.230 [0.193, 0.271] |" in page
    assert "| from scratch | 0 | scratch_0 | 0.500 ± 0.050 |" in page
    assert "yes (Holm p = 0.01)" in page and "| chosen |" in page
    assert "| l2sp_1e_1 | 0.1 | 0.125 | 0.0625 | 3.5 |" in page
    assert "refitted on all 50 labelled rows, test error 0.200" in page


def test_without_distances_the_page_says_so(tmp_path: Path):
    entries = sweep_design.entries(sweep_design.QUICK)
    found = results.entry_results(_lab(tmp_path, entries, {}), "dissimilar", entries)
    assert "evaluate wrote no distances" in tables.distances_table(found)

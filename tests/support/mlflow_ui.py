"""A sweep in an MLflow store as the stages leave it, without training, and a headless
Chromium to look at it: for tests/test_ui.py and `python -m benchmarks.ui_links`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.task import CLASSIFICATION_TASK

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# The decision's one line, as the report writes it (reports/decision.json's `verdict`).
VERDICT = "chosen by min: {}, validation error 0.128 ± 0.020 (binomial SE, 270 rows)"


def entry_figures(test_error: float) -> dict[str, float]:
    """The headline figures evaluate computes, made up around `test_error`."""
    return {
        "train_error": 0.05,
        "val_error": round(test_error - 0.01, 3),
        "test_error": test_error,
        "val_xent": 1.0,
        "gen_gap": round(test_error - 0.05, 3),
        "l2_penalty": 0.1,
        "sum_sq_weights": 100.0,
    }


def fill_store(
    params_file: Path, folder: Path, experiment: str, sweep: Mapping[str, tuple[float, float]]
) -> tuple[str, str]:
    """Log `sweep` (entry -> its rate and made-up test error) as the stages do, into the store
    that MLFLOW_TRACKING_URI names; return the experiment id and the parent run's description.
    The entry best on validation is the chosen one."""
    from mlflow.tracking import MlflowClient
    from ruamel.yaml import YAML

    from pipeline import record as record_stage
    from pipeline import report
    from pipeline.config import load_config
    from pipeline.config.entries import resolve_entries, resolve_towers
    from pipeline.core import contracts
    from pipeline.evaluate import entry_metrics
    from pipeline.reporting import plots, table
    from pipeline.tracking import records, runs, store
    from pipeline.train import tower_params
    from tests.support.params import write_yaml

    raw = YAML(typ="safe").load(params_file.read_text())
    raw["base"]["experiment"] = experiment
    raw["sweep"] = {entry: {"l2": rate} for entry, (rate, _) in sweep.items()}
    write_yaml(params_file, raw)
    config = load_config(params_file)
    towers = resolve_towers(config)

    # train: the parent run and one child run per model, made up front.
    experiment_id = store.use_experiment(experiment)
    names = [t.name for t in towers]
    tags = {t.name: {"entry": t.entry.name, "seed": str(t.seed)} for t in towers}
    record = contracts.SweepRecord(
        tuple(contracts.TrainedModel(t.entry.name, t.seed, t.entry.name, None) for t in towers),
        tuple(name for name, _ in towers[0].entry.layer_rates),
    )
    models = folder / "models"
    models.mkdir()
    contracts.write_sweep_record(models, record)
    with runs.sweep_runs(experiment_id, names, tags) as made:
        for tower in towers:
            data = config.data.as_trained()
            records.log_params(made.child_ids[tower.name], tower_params(config, tower, data))
        digest = contracts.models_digest(models)
        records.set_tags(made.parent_id, {contracts.MODELS_DIGEST_TAG: digest})

    # evaluate: metrics/ and evaluation/.
    for tower, saved in zip(towers, record.towers, strict=True):
        figures = entry_figures(sweep[tower.entry.name][1])
        name = tower.entry.name
        contracts.write_json(
            folder / "metrics" / f"{name}.json",
            entry_metrics([saved], [figures], CLASSIFICATION_TASK),
        )
        contracts.write_json(
            folder / "evaluation" / f"{name}.json",
            {"entry": name, "seeds": [{"seed": tower.seed, "metrics": figures}]},
        )

    # report: reports/; record: all of it into the runs, and the links into the description.
    sweep_table = table.sweep_table(
        resolve_entries(config), folder / "metrics", folder / "evaluation", task=CLASSIFICATION_TASK
    )
    rates = {entry: rate for entry, (rate, _) in sweep.items()}
    by_rate = plots.long_by_rate(plots.by_rate(sweep_table, rates), plots.ERROR_SERIES, "error")
    pages = {"sweep.md": "# L2 sweep\n", report.CHOOSING_FILE: "# Choosing L2\n"}
    report.write_outputs(folder / "reports", sweep_table, pages, {"error_vs_rate": by_rate}, {})
    reports = folder / "reports"
    contracts.write_json(
        reports / contracts.BEST_FILE, report.best_figures(sweep_table, None, CLASSIFICATION_TASK)
    )
    best = str(sweep_table.iloc[0]["entry"])
    summary = contracts.DecisionSummary(
        best_entry=best, data_note=None, chosen_entry=best, verdict=VERDICT.format(best)
    )
    contracts.write_summary(reports, summary)
    record_stage.record(models, folder / "metrics", folder / "evaluation", folder / "reports")
    return experiment_id, MlflowClient().get_run(made.parent_id).data.tags[runs.NOTE_TAG]


def open_browser(profile: Path, size: tuple[int, int]):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--window-size={size[0]},{size[1]}", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    # An explicit driver path: selenium must not try to download one.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def chart_drawn(driver, points: int) -> bool:
    """The chart's plot shows its x tick labels and `points` points."""
    from selenium.webdriver.common.by import By

    plots = driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
    if not plots:
        return False
    ticks = plots[0].find_elements(By.CSS_SELECTOR, ".xtick text")
    drawn = plots[0].find_elements(By.CSS_SELECTOR, ".scatterlayer .point")
    return len(ticks) == len(drawn) == points


def table_shown(driver, rows: int) -> bool:
    """The runs table shows `rows` rows of validation error."""
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, '[role="gridcell"][col-id="metrics.`val_error`"]')
    return len([c for c in cells if c.text.strip()]) == rows


def chromium_version() -> str:
    """`156.0.8078.114`, from `chromium --version` ("Chromium 156.0.8078.114 built on ...")."""
    said = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=60)
    words = said.stdout.split()
    return words[words.index("Chromium") + 1] if "Chromium" in words[:-1] else "?"

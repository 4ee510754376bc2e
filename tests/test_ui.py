"""The MLflow UI in a real browser: a sweep logged by the pipeline's own tracking code opens on
the runs table, shows as one parent run with the entries nested under it; the saved view that
`record` prints and puts in the parent's description opens on the answer with no clicks (and
the UI saves it back unchanged); its compare link shows every entry's `l2` and `test_error`
side by side.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them) and selenium. The
store is filled as `train` and `record` fill it (pipeline.tracking, `train.tower_params`,
`record.record`) from files written as `evaluate` and `report` write them, without training:
seconds, not minutes.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import mlflow_server

pytestmark = [pytest.mark.slow, pytest.mark.services]  # Chromium

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# entry -> (rate, test_error); the names and figures of the default sweep's two ends
SWEEP = {"l2_0": (0.0, 0.302), "l2_1e_2": (0.01, 0.138)}


def _entry_figures(test_error: float) -> dict[str, float]:
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


def _fill_store(params_file: Path, folder: Path, experiment: str) -> tuple[str, dict]:
    """Log a two-entry sweep as the stages do; return the experiment id and the links of the
    parent run's description, by their text."""
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
    raw["sweep"] = {entry: {"l2": rate} for entry, (rate, _) in SWEEP.items()}
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
    with runs.sweep_runs(experiment_id, names, tags) as sweep:
        for tower in towers:
            data = config.data.as_trained()
            records.log_params(sweep.child_ids[tower.name], tower_params(config, tower, data))
        digest = contracts.models_digest(models)
        records.set_tags(sweep.parent_id, {contracts.MODELS_DIGEST_TAG: digest})

    # evaluate: metrics/ and evaluation/.
    for tower, saved in zip(towers, record.towers, strict=True):
        figures = _entry_figures(SWEEP[tower.entry.name][1])
        name = tower.entry.name
        contracts.write_json(folder / "metrics" / f"{name}.json", entry_metrics([saved], [figures]))
        contracts.write_json(
            folder / "evaluation" / f"{name}.json",
            {"entry": name, "seeds": [{"seed": tower.seed, "metrics": figures}]},
        )

    # report: reports/; record: all of it into the runs, and the links into the description.
    sweep_table = table.sweep_table(
        resolve_entries(config), folder / "metrics", folder / "evaluation"
    )
    rates = {entry: rate for entry, (rate, _) in SWEEP.items()}
    by_rate = plots.long_by_rate(plots.by_rate(sweep_table, rates), plots.ERROR_SERIES, "error")
    pages = {"sweep.md": "# L2 sweep\n", report.CHOOSING_FILE: "# Choosing L2\n"}
    report.write_outputs(folder / "reports", sweep_table, pages, {"error_vs_rate": by_rate}, {})
    reports = folder / "reports"
    contracts.write_json(reports / contracts.BEST_FILE, report.best_figures(sweep_table, None))
    best = str(sweep_table.iloc[0]["entry"])
    contracts.write_summary(reports, contracts.DecisionSummary(best_entry=best, data_note=None))
    record_stage.record(models, folder / "metrics", folder / "evaluation", folder / "reports")
    note = MlflowClient().get_run(sweep.parent_id).data.tags[runs.NOTE_TAG]
    links = dict(re.findall(r"\[([^]]+)\]\((#/[^)]*)\)", note))
    return experiment_id, links


def _browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--window-size=3200,1000", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    # An explicit driver path: selenium must not try to download one.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _on_server(link: str, server_uri: str) -> str:
    """A relative link of the parent's description on the test's server."""
    return f"{server_uri}/{link}"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A filled store served by `mlflow server`: its URI, the experiment id, the links of the
    sweep parent's description."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver)")  # fmt: skip
    pytest.importorskip("selenium", reason="needs selenium (pip install selenium)")
    from tests.support.params import tiny_params, write_yaml

    folder = tmp_path_factory.mktemp("ui")
    store_uri = f"sqlite:///{folder / 'mlflow.db'}"
    write_yaml(folder / "params.yaml", tiny_params())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store_uri)
        patch.setenv("DVC_ROOT", str(folder))
        patch.chdir(folder)
        experiment_id, links = _fill_store(folder / "params.yaml", folder, "ui-test")
    with mlflow_server(store_uri, folder / "artifacts", folder / "server.log", workers=1) as uri:
        yield {"uri": uri, "experiment_id": experiment_id, "links": links}


@pytest.fixture(scope="module")
def browser(ui: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One headless Chromium for the module, with a profile of its own."""
    started = _browser(tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield started
    finally:
        started.quit()


@pytest.fixture
def driver(browser, ui: dict, tmp_path: Path) -> Iterator:
    """The module's Chromium as a fresh one meets the UI: no UI setting remembered (the UI
    keeps them in the page's storage), no page open."""
    browser.get(f"{ui['uri']}/#/")
    browser.execute_script("window.localStorage.clear(); window.sessionStorage.clear();")
    browser.delete_all_cookies()
    browser.get("about:blank")
    yield browser
    browser.save_screenshot(str(tmp_path / "last_page.png"))
    assert (tmp_path / "last_page.png").read_bytes()[:4] == b"\x89PNG"


def _body_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _wait(driver, condition, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(lambda _: condition())


def _on_runs_table(driver) -> bool:
    """The experiment's runs table (Model training view), with the sweep's parent row."""
    from selenium.webdriver.common.by import By

    return (
        "/runs" in driver.current_url
        and "sweep" in _body_text(driver)
        and bool(
            driver.find_elements(
                By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']"
            )
        )
    )


def test_the_sweep_is_one_parent_run_with_the_entries_nested_and_l2_test_error_columns(
    ui: dict, driver
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(
        f"{ui['uri']}/#/experiments/{ui['experiment_id']}/runs?workflowType=machine_learning"
    )
    _wait(driver, lambda: _on_runs_table(driver))
    # The entries are nested under the parent: one top-level row until it is expanded.
    expanders = driver.find_elements(
        By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']"
    )
    assert len(expanders) == 1
    assert not any(entry in _body_text(driver) for entry in SWEEP)
    expanders[0].click()
    _wait(driver, lambda: all(entry in _body_text(driver) for entry in SWEEP))
    # Show the rate param and the test_error metric, as a user does from "Columns".
    columns = next(b for b in driver.find_elements(By.TAG_NAME, "button")
                   if b.text.strip() == "Columns")  # fmt: skip
    columns.click()
    for name in ("test_error", "l2"):
        _wait(driver, lambda n=name: driver.find_elements(By.XPATH, _tree_item(n)))
        driver.find_element(By.XPATH, _tree_item(name)).click()
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    _wait(driver, lambda: "0.138" in _body_text(driver) and "0.302" in _body_text(driver))
    cells = {
        c.text.strip()
        for c in driver.find_elements(By.CSS_SELECTOR, '[role="gridcell"][col-id="params.`l2`"]')
    }
    assert {"0.0", "0.01"} <= cells, cells


def test_the_descriptions_compare_link_shows_each_entrys_l2_and_test_error(ui: dict, driver):
    link = ui["links"]["Compare the runs side by side"]
    assert f'&experiments=["{ui["experiment_id"]}"]' in link
    driver.get(_on_server(link, ui["uri"]))
    _wait(
        driver, lambda: "\nMetrics\n" in _body_text(driver) and "test_error" in _body_text(driver)
    )
    text = _body_text(driver)
    params, metrics = text.split("\nParameters\n", 1)[1].split("\nMetrics\n", 1)
    # One column per run, in the link's order: the entries' rates side by side.
    assert "\nentry l2_0 l2_1e_2\n" in params, params
    assert "\nl2 0.0 0.01\n" in params, params
    # test_error's values appear nowhere else among the metrics (see _entry_figures).
    assert "test_error" in metrics.split(), metrics
    for _, test_error in SWEEP.values():
        assert str(test_error) in metrics.split(), metrics


def test_the_experiment_opens_on_the_runs_table_once_model_training_is_chosen(ui: dict, driver):
    """MLflow 3.17's UI picks the view from `?workflowType=` or the browser's remembered
    choice (default GenAI); the experiment's `mlflow.experimentKind` tag is not consulted."""
    from mlflow.tracking import MlflowClient
    from selenium.webdriver.common.by import By

    experiment = MlflowClient(ui["uri"]).get_experiment(ui["experiment_id"])
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    driver.get(f"{ui['uri']}/#/experiments/{ui['experiment_id']}")
    _wait(driver, lambda: "Model training" in _body_text(driver))
    toggle = driver.find_element(
        By.XPATH, "//*[@role='button'][normalize-space(.)='Model training']"
    )
    # A script click: on a first visit a GenAI tip popover covers the sidebar's toggle.
    driver.execute_script("arguments[0].click()", toggle)
    _wait(driver, lambda: _on_runs_table(driver))
    # Remembered: the bare experiment address now opens on the runs table.
    driver.get(f"{ui['uri']}/#/experiments")
    driver.get(f"{ui['uri']}/#/experiments/{ui['experiment_id']}")
    _wait(driver, lambda: _on_runs_table(driver))
    assert "genai" not in driver.current_url


def _view_links(ui: dict) -> tuple[str, str]:
    """The saved view's table and chart links, from the parent run's description."""
    table = ui["links"]["The sweep by validation error"]
    chart = ui["links"]["Chart: validation error vs L2 rate"]
    return table, chart


def test_a_fresh_browser_opens_the_printed_view_on_the_answer_with_no_clicks(ui: dict, driver):
    """The link `record` prints and the description holds: the sweep's model runs, best on
    validation first, with l2 and val_error; the workflow type in the link skips the GenAI
    view that a fresh browser otherwise opens on."""
    from selenium.webdriver.common.by import By

    table, _ = _view_links(ui)
    assert table.startswith(f"#/experiments/{ui['experiment_id']}/runs?workflowType=")
    driver.get(_on_server(table, ui["uri"]))

    def cells(column: str) -> list[str]:
        found = driver.find_elements(By.CSS_SELECTOR, f'[role="gridcell"][col-id="{column}"]')
        return [cell.text.strip() for cell in found]

    _wait(driver, lambda: len(cells("metrics.`val_error`")) == len(SWEEP))
    # Best on validation first: l2_1e_2 (val_error 0.128) above l2_0 (0.292).
    text = _body_text(driver)
    assert 0 <= text.find("l2_1e_2") < text.find("l2_0"), text
    assert cells("metrics.`val_error`") == ["0.128", "0.292"]
    assert cells("params.`l2`") == ["0.01", "0.0"]
    assert "genai" not in driver.current_url


def test_the_views_chart_plots_validation_error_against_log10_of_the_rate(ui: dict, driver):
    _, chart = _view_links(ui)
    driver.get(_on_server(chart, ui["uri"]))
    _wait(driver, lambda: "log10_l2 vs. val_error" in _body_text(driver))
    # The points' x: rate 0 a decade below 0.01, as in the DVC plots.
    from mlflow.tracking import MlflowClient

    runs = MlflowClient(ui["uri"]).search_runs([ui["experiment_id"]])
    x = {r.info.run_name: r.data.metrics.get("log10_l2") for r in runs}
    assert {name: x[name] for name in SWEEP} == {"l2_0": -3.0, "l2_1e_2": -2.0}


def _view_state(text: str) -> dict:
    """A saved view's state as the UI writes it: JSON, or `deflate;` and zlib in base64."""
    import base64
    import json
    import zlib

    if text.startswith("deflate;"):
        text = zlib.decompress(base64.b64decode(text.removeprefix("deflate;"))).decode()
    return json.loads(text)


def test_the_views_tag_has_the_format_of_one_the_ui_saves(ui: dict, driver):
    """The UI's "Save as new view" writes a view tag (of the user's own state, not of the
    shared one shown); ours has its envelope, its state keys and its column names."""
    import json

    from mlflow.tracking import MlflowClient
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    table, _ = _view_links(ui)
    key = table.split("viewStateShareKey=", 1)[1].split("&", 1)[0]
    client = MlflowClient(ui["uri"])

    def views() -> dict[str, dict]:
        tags = client.get_experiment(ui["experiment_id"]).tags
        prefix = "mlflow.sharedViewState."
        return {
            k.removeprefix(prefix): json.loads(v) for k, v in tags.items() if k.startswith(prefix)
        }

    ours = views()[key]
    driver.get(_on_server(table, ui["uri"]))
    trigger = "[data-component-id='mlflow.experiment_page.saved_views.trigger']"
    # The view applied (sorted, filtered) before saving: the UI saves what it shows.
    _wait(driver, lambda: "Sort: val_error" in _body_text(driver) and "l2_0" in _body_text(driver))
    driver.find_element(By.CSS_SELECTOR, trigger).click()
    _wait(driver, lambda: "Save as new view" in _body_text(driver))
    item = next(m for m in driver.find_elements(By.CSS_SELECTOR, "[role=menuitem]")
                if "Save as new view" in m.text)  # fmt: skip
    item.click()
    name_input = "[data-component-id='mlflow.experiment_page.save_and_share_view.name_input']"
    _wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, name_input))
    driver.find_element(By.CSS_SELECTOR, name_input).send_keys("made in the UI", Keys.ENTER)
    made = _wait(driver, lambda: [v for v in views().values() if v["name"] == "made in the UI"])
    state, written = json.loads(ours["state"]), _view_state(made[0]["state"])
    # The same envelope, and state keys the UI itself writes (charts and sections it writes
    # once a chart is edited), columns named as the UI names them.
    assert ours.keys() == made[0].keys()
    assert state.keys() - {"compareRunCharts", "compareRunSections"} <= written.keys()
    column = re.compile(r"^(attributes|params|metrics|tags)\.`[^`]+`$")
    for name in [*written["selectedColumns"], *state["selectedColumns"], state["orderByKey"]]:
        assert column.match(name), name
    assert state["runsHiddenMode"] in {written["runsHiddenMode"], "SHOW_ALL"}


def _tree_item(name: str) -> str:
    """The column picker's entry whose label is exactly `name`."""
    return f"//span[contains(@class, 'tree-title') and normalize-space(text())='{name}']"

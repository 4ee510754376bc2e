"""The MLflow UI in a real browser: a sweep logged by the pipeline's own tracking code shows up
grouped under its parent run, with the rate and test_error columns.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them) and selenium. The
store is filled through `pipeline.tracking` and `pipeline.train.run_params`, exactly the
names a real sweep logs, without training (seconds, not minutes).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SWEEP = {"l2_0": (0.0, 0.302), "l2_1e_2": (0.01, 0.138)}  # entry -> (rate, test_error)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fill_store(params_file: Path, experiment: str) -> str:
    """Log a two-entry sweep and its parent; return the experiment id."""
    from conftest import write_yaml
    from ruamel.yaml import YAML

    from pipeline import tracking
    from pipeline.config import load_config
    from pipeline.train import run_params

    raw = YAML(typ="safe").load(params_file.read_text())
    raw["sweep"] = {entry: {"l2": rate} for entry, (rate, _) in SWEEP.items()}
    write_yaml(params_file, raw)
    config = load_config(params_file)
    runs = {}
    for entry, (_, test_error) in SWEEP.items():
        with tracking.entry_run(experiment, entry) as run_id:
            tracking.log_params(run_params(config, entry))
            tracking.log_metrics({"test_error": test_error, "val_error": test_error - 0.01})
            runs[entry] = run_id
    with tracking.sweep_run(experiment, runs) as parent_id:
        tracking.adopt_runs(parent_id, runs)
    return tracking.use_experiment(experiment)


def _start_server(store_uri: str, port: int, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri,
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with log_path.open("w") as log:
        # Its own process group: the server forks workers, and all of them must stop.
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited early:\n{log_path.read_text()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    _stop_server(server)
    raise AssertionError(f"mlflow server did not answer in 90 s:\n{log_path.read_text()}")


def _stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


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


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
def test_mlflow_ui_shows_the_sweep_with_rate_and_test_error(
    params_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("selenium", reason="needs selenium (pip install selenium)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    store_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    experiment_id = _fill_store(params_file, "ui-test")

    port = _free_port()
    server = _start_server(store_uri, port, tmp_path / "server.log")
    screenshot = tmp_path / "mlflow_ui.png"
    try:
        driver = _browser(tmp_path / "chromium-profile")
        try:
            wait = WebDriverWait(driver, 60)
            driver.get(
                f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs"
                "?workflowType=machine_learning"
            )
            body = driver.find_element(By.TAG_NAME, "body")
            wait.until(lambda _: "sweep" in body.text)
            # The entries are nested under the parent: expand it.
            expander = driver.find_element(
                By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']"
            )
            expander.click()
            wait.until(lambda _: all(entry in body.text for entry in SWEEP))
            # Show the rate param and the test_error metric, as a user does from "Columns".
            columns = next(b for b in driver.find_elements(By.TAG_NAME, "button")
                           if b.text.strip() == "Columns")  # fmt: skip
            columns.click()
            for name in ("test_error", "l2"):
                wait.until(lambda _, n=name: driver.find_elements(By.XPATH, _tree_item(n)))
                driver.find_element(By.XPATH, _tree_item(name)).click()
            body.send_keys(Keys.ESCAPE)
            for column in ("metrics.`test_error`", "params.`l2`"):
                wait.until(
                    lambda _, c=column: driver.find_elements(By.CSS_SELECTOR, f'[col-id="{c}"]')
                )
            wait.until(lambda _: "0.138" in body.text and "0.302" in body.text)
            cells = {
                c.text.strip()
                for c in driver.find_elements(
                    By.CSS_SELECTOR, '[role="gridcell"][col-id="params.`l2`"]'
                )
            }
            assert {"0.0", "0.01"} <= cells, cells
        finally:
            driver.save_screenshot(str(screenshot))
            driver.quit()
    finally:
        _stop_server(server)
    assert screenshot.read_bytes()[:4] == b"\x89PNG"
    assert server.poll() is not None


def _tree_item(name: str) -> str:
    """The column picker's entry whose label is exactly `name`."""
    return f"//span[contains(@class, 'tree-title') and normalize-space(text())='{name}']"

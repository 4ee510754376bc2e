"""`dvc plots show` with the project's plot definitions: a page that renders with the network
off, a rate axis that labels rate 0 as 0, a log axis for the loss curves and one chart per
entry for the error curves.

The data is the committed default sweep's `reports/plots/` (what the report stage writes), so
no training runs here. The page's JavaScript comes from the installed vl-convert-python, as
the bootstrap makes it.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from pipeline.bootstrap import write_plots_page
from tests.support.params import ROOT
from tests.support.project import Project

# Every test here runs `dvc plots show` (or `dvc init` for it): slow by the tiers' rule.
pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
RATE_PLOT = "Error vs L2 rate"
LOSS_PLOT = "Learning curves, train data loss vs L2 penalty, every entry"
ERROR_CURVES = "Learning curves, error (train dashed vs val solid), one chart per entry"


@pytest.fixture(scope="module")
def plots_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated page template, made once: bundling the JavaScript takes ~10 s."""
    page = tmp_path_factory.mktemp("page") / "plots_page.html"
    write_plots_page(page, Path(sys.executable))
    return page


@pytest.fixture(scope="module")
def plots_project(tmp_path_factory: pytest.TempPathFactory, plots_page: Path) -> Project:
    """A DVC project with the repository's plot definitions, committed plot data, .dvc/config
    and the generated page: all that `dvc plots show` reads."""
    project = Project(tmp_path_factory.mktemp("plots") / "lab")
    project.root.mkdir()
    for name in ("dvc.yaml", "params.yaml"):  # dvc.yaml's stages need params.yaml's sweep
        shutil.copy(ROOT / name, project.root / name)
    shutil.copytree(
        ROOT / "pipeline" / "plot_templates", project.root / "pipeline" / "plot_templates"
    )
    shutil.copytree(ROOT / "reports" / "plots", project.root / "reports" / "plots")
    project.run("git", "init", "-q")
    project.dvc("init", "-q")
    shutil.copy(ROOT / ".dvc" / "config", project.root / ".dvc" / "config")
    # Where .dvc/config says the page is (relative to .dvc/), as the bootstrap writes it.
    page = project.root / ".dvc" / _config_html_template(project.root / ".dvc" / "config")
    page.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(plots_page, page)
    return project


@pytest.fixture(scope="module")
def shown(plots_project: Project) -> dict:
    """`dvc plots show --json`: each plot's filled Vega-Lite spec, by plot id.

    Not `--show-vega <id>`: it prints nothing for ids with parentheses (DVC 3.67)."""
    return json.loads(plots_project.dvc("plots", "show", "--json").stdout)["data"]


def _config_html_template(config: Path) -> str:
    import configparser

    parser = configparser.ConfigParser()
    parser.read(config)
    return parser["plots"]["html_template"]


def _vega(shown: dict, plot: str) -> dict:
    (rendered,) = shown[plot]
    assert rendered["type"] == "vega"
    return rendered["content"]


def _axis_labels(svg: str) -> list[str]:
    groups = re.findall(r'<g class="mark-text role-axis-label"[^>]*>(.*?)</g>', svg, re.S)
    return [re.findall(r"<text[^>]*>([^<]*)</text>", group) for group in groups]


def test_the_rate_axis_labels_each_rate_and_rate_0_as_0(shown: dict):
    import vl_convert

    spec = _vega(shown, RATE_PLOT)
    x_labels, _y_labels = _axis_labels(vl_convert.vegalite_to_svg(spec))
    rates = sorted({float(row["l2_rate"]) for row in spec["data"]["values"]})
    assert rates[0] == 0.0  # the committed sweep has an unregularized entry
    assert [float(label) for label in x_labels] == rates, x_labels
    assert x_labels[0] == "0"
    assert not any(label.startswith("-") for label in x_labels), x_labels


def test_loss_curves_use_a_log_scale_without_zero_penalties(shown: dict):
    import vl_convert

    spec = _vega(shown, LOSS_PLOT)
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    _x_labels, y_labels = _axis_labels(vl_convert.vegalite_to_svg(spec))
    # Penalties of about 1e-5 and losses above 1 are both on the axis: several decades.
    decades = [label for label in y_labels if re.fullmatch(r"0\.0*1|1|10+", label)]
    assert len(decades) >= 5, y_labels


def test_error_curves_are_one_chart_per_entry(shown: dict):
    import vl_convert

    spec = _vega(shown, ERROR_CURVES)
    entries = {row["entry"] for row in spec["data"]["values"]}
    assert len(entries) >= 10
    svg = vl_convert.vegalite_to_svg(spec)
    titles = re.findall(r"aria-label=\"Title text '([^']*)'", svg)
    assert entries <= set(titles), titles  # one chart titled by each entry
    assert len(re.findall(r'class="mark-line role-mark', svg)) >= len(entries)


@pytest.mark.services  # Chromium
@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
def test_the_plots_page_renders_with_the_network_off(plots_project: Project, tmp_path: Path):
    pytest.importorskip("selenium", reason="needs selenium (pip install selenium)")
    n_vega_plots = sum(
        not isinstance(plot, str) for plot in _dvc_yaml_plots(plots_project.root / "dvc.yaml")
    )
    from dvc_render.html import PAGE_HTML

    plots_project.dvc("plots", "show", "--out", "offline")
    # The control: DVC's own page loads Vega from a CDN, so it must stay blank here, which
    # shows the network really is off.
    (tmp_path / "dvc_default.html").write_text(PAGE_HTML)
    plots_project.dvc(
        "plots", "show", "--out", "cdn", "--html-template", str(tmp_path / "dvc_default.html")
    )
    offline_html = (plots_project.root / "offline" / "index.html").read_text()
    assert "cdn.jsdelivr" not in offline_html and "<script src=" not in offline_html

    driver = _offline_browser(tmp_path / "profile")
    try:
        offline = plots_project.root / "offline" / "index.html"
        rendered_offline = _rendered(driver, offline, n_vega_plots, wait=30)
        driver.save_screenshot(str(tmp_path / "offline.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        cdn = plots_project.root / "cdn" / "index.html"
        rendered_cdn = _rendered(driver, cdn, n_vega_plots, wait=3)
    finally:
        driver.quit()
    assert rendered_offline == n_vega_plots, (rendered_offline, errors)
    assert errors == []
    assert rendered_cdn == 0


def _dvc_yaml_plots(path: Path) -> list:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(path.read_text())["plots"]


def _offline_browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--window-size=1400,3000", f"--user-data-dir={profile}",
                 # No network: requests go to a closed port, and no name resolves.
                 "--proxy-server=127.0.0.1:9",
                 "--host-resolver-rules=MAP * ~NOTFOUND"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _rendered(driver, page: Path, expected: int, wait: float) -> int:
    """How many Vega charts on `page` drew an SVG or a canvas, waiting up to `wait` seconds
    for `expected` of them."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    count = "return document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length"
    driver.get(page.as_uri())
    with contextlib.suppress(TimeoutException):  # then the count says how many did
        WebDriverWait(driver, wait).until(lambda d: d.execute_script(count) >= expected)
    return driver.execute_script(count)


def test_the_default_sweep_shows_every_plot_without_a_warning_into_an_ignored_folder(
    plots_project: Project,
):
    """The committed default sweep has no grid or data-size entries: their plot files are
    header only, so `dvc plots show` finds every declared file; its page is git-ignored."""
    shown = plots_project.dvc("plots", "show")
    assert "failed to load" not in shown.stdout + shown.stderr, shown.stderr
    assert (plots_project.root / "dvc_plots" / "index.html").is_file()
    shutil.copy(ROOT / ".gitignore", plots_project.root / ".gitignore")
    assert plots_project.run("git", "check-ignore", "-q", "dvc_plots/index.html").returncode == 0

"""How long the sweep parent's MLflow links take to show in headless Chromium, from navigation
to the chart drawn (its x labels and a point per entry) and to the runs table's rows.

    python -m benchmarks.ui_links                # the default sweep's single-rate entries
    python -m benchmarks.ui_links --visits 2     # fewer visits per link
    python -m benchmarks.ui_links --out benchmarks/ui_links_results.json   # docs/views.md's figures

A store filled as the stages fill it (tests/support/mlflow_ui.py, no training) is served by
`mlflow server` on 127.0.0.1. Each link is opened in a fresh Chromium profile (nothing cached,
as a first click from the description), then again in the same browser. Prints the times and
the conditions they were measured under; nothing is asserted (tests/test_ui.py checks what
the links show).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import ROOT, _yaml, bench_env, machine
from tests.support import mlflow_ui
from tests.support.params import tiny_params, write_yaml
from tests.support.services import mlflow_server

SCREEN = (1920, 1080)
LINKS = {
    "chart": ("Chart: validation error vs L2 rate", mlflow_ui.chart_drawn),
    "table": ("The sweep by validation error", mlflow_ui.table_shown),
}


def default_rates(params_file: Path) -> dict[str, float]:
    """The single-rate L2 entries of `params_file`'s sweep: the points of the chart."""
    sweep = _yaml().load(params_file.read_text())["sweep"]
    return {
        entry: float(spec["l2"])
        for entry, spec in sweep.items()
        if isinstance(spec.get("l2"), int | float) and not spec.get("weight_decay")
    }


def made_up_sweep(rates: dict[str, float]) -> dict[str, tuple[float, float]]:
    """entry -> (rate, test error): a U over the rates, as the default sweep's errors are."""
    ordered = sorted(rates, key=rates.get)
    middle = (len(ordered) - 1) / 2
    return {e: (rates[e], round(0.14 + 0.03 * abs(i - middle), 3)) for i, e in enumerate(ordered)}


def time_link(url: str, shown, points: int, profile: Path, visits: int) -> list[float]:
    """Seconds from navigation until `shown(driver, points)`, for `visits` visits: the first
    in a fresh profile, the others in the same browser."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = mlflow_ui.open_browser(profile, SCREEN)
    try:
        times = []
        for _ in range(visits):
            driver.get("about:blank")
            started = time.perf_counter()
            driver.get(url)
            WebDriverWait(driver, 120, poll_frequency=0.05).until(lambda d: shown(d, points))
            times.append(time.perf_counter() - started)
        return times
    finally:
        driver.quit()


def measure(work: Path, rates: dict[str, float], visits: int) -> dict:
    params = tiny_params()
    write_yaml(work / "params.yaml", params)
    store_uri = f"sqlite:///{work / 'mlflow.db'}"
    saved, cwd = dict(os.environ), Path.cwd()
    os.environ.update(MLFLOW_TRACKING_URI=store_uri, DVC_ROOT=str(work))
    os.chdir(work)
    try:
        _, note = mlflow_ui.fill_store(work / "params.yaml", work, "ui-bench", made_up_sweep(rates))
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
    links = dict(re.findall(r"\[([^]]+)\]\((#/[^)]*)\)", note))
    result: dict = {"entries": len(rates), "visits": visits, "seconds": {}}
    env = bench_env()
    with mlflow_server(store_uri, work / "artifacts", work / "server.log", env=env) as uri:
        for name, (text, shown) in LINKS.items():
            profile = work / f"profile-{name}"
            result["seconds"][name] = time_link(
                f"{uri}/{links[text]}", shown, len(rates), profile, visits
            )
    return result


def table(result: dict) -> str:
    rows = ["| link | first visit, fresh profile | again, same browser (median) |", "|---|---|---|"]
    for name, times in result["seconds"].items():
        again = f"{statistics.median(times[1:]):.1f} s" if len(times) > 1 else "-"
        rows.append(f"| {name} | {times[0]:.1f} s | {again} |")
    return "\n".join(rows)


def conditions(result: dict) -> str:
    return (
        f"{result['entries']} entries, {result['visits']} visits per link, headless Chromium "
        f"{result['chromium']} at {SCREEN[0]}x{SCREEN[1]}, `mlflow server` (1 worker) on "
        "127.0.0.1"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--visits", type=int, default=3, help="visits per link (>= 1)")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.visits < 1:
        parser.error("--visits must be at least 1")
    if not (mlflow_ui.CHROMIUM and mlflow_ui.CHROMEDRIVER):
        sys.exit("needs Debian's chromium and chromium-driver")
    measured_on = machine()
    with tempfile.TemporaryDirectory(prefix="l2lab-ui-") as tmp:
        result = measure(Path(tmp), default_rates(args.params), args.visits)
    measured_on["load_average_at_end"] = os.getloadavg()
    result |= {"chromium": mlflow_ui.chromium_version(), "machine": measured_on}
    result |= {"conditions": conditions(result), "table": table(result)}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['conditions']}\n\n{result['table']}")


if __name__ == "__main__":
    main()

"""Links into the MLflow UI, and the saved views of a sweep that open on its answer.

Links are relative (`#/...`) so a run's description works on any host and port; `absolute`
puts the tracking server (or `mlflow ui`'s default address) in front for the terminal.

The saved views follow what MLflow 3.15+'s UI writes when a user saves a view ("Save view"):
an experiment tag `mlflow.sharedViewState.<key>` holding the envelope
`{"name", "createdAt", "updatedAt", "state"}`, where `state` is the JSON of the runs page's
search facets and UI state (columns such as params.`l2`, sort key metrics.`val_error`, charts).
The UI does not share which rows are expanded, so the views filter on the sweep's model runs
instead: they then show as rows of their own, without their parent.

Each sweep saves two views: its table, best on validation first, and its chart. The chart
needs a view of its own because MLflow 3.17 lays a text x axis out in the order of the rows
(the last row first), so that view sorts by the rate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from pipeline.core.task import Task

# Where `mlflow ui` serves by default: the address printed for the local store.
DEFAULT_UI = "http://127.0.0.1:5000"
SHARED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
# The rate's position on the DVC plots' log10 axis, rate 0 a decade below the smallest
# non-zero rate: the chart view sorts by it.
LOG10_L2_METRIC = "log10_l2"
# The chart's x: a param of each single-rate model run, its rate and entry as text
# (`rate_label`). MLflow's scatter has no log axis and no tick labels of its own; plotly
# lays text out as categories, one labelled tick per rate, rate 0 labelled `0`.
RATE_PARAM = "L2 rate"
# A model run's tag: "true" on the runs of the entry the report chose, "false" on the others.
CHOSEN_TAG = "chosen"
_SECTION = "l2-sweep"
_CHART_SUFFIX = "-chart"
# MLflow's UI refuses to save a view once an experiment holds 40 ("This experiment has
# reached the maximum of 40 saved views"). Each sweep saves two, so the lab keeps only the
# views of its newest few sweeps: a user's views always have room.
SWEEP_VIEWS_KEPT = 10
# The chart's card: one per row (the panel's full width) and 400 px high, one of the heights
# the UI offers, so that on a 1920x1080 screen the whole card shows under the page's header.
CHART_CARD_HEIGHT = 400


def runs_link(experiment_id: str) -> str:
    """The experiment's runs table; MLflow 3 otherwise opens a new browser on its GenAI view."""
    return f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def view_link(experiment_id: str, key: str, chart: bool = False) -> str:
    """The saved view `key` of the experiment: its table, or with `chart` its charts."""
    link = f"{runs_link(experiment_id)}&viewStateShareKey={key}"
    return link + "&compareRunsMode=CHART" if chart else link


def compare_link(experiment_id: str, run_ids: list[str]) -> str:
    """The UI's compare view of `run_ids`: params (`l2`) and metrics side by side."""
    runs = json.dumps(run_ids, separators=(",", ":"))
    return f'#/compare-runs?runs={runs}&experiments=["{experiment_id}"]'


def absolute(link: str, tracking_uri: str) -> str:
    """`link` on the tracking server at `tracking_uri`, or on `mlflow ui` for a local store."""
    is_server = tracking_uri.startswith(("http://", "https://"))
    return f"{(tracking_uri if is_server else DEFAULT_UI).rstrip('/')}/{link}"


def rate_label(rate: float, entry: str) -> str:
    """`0 (l2_0)`, `1e-4 (l2_1e_4)`, `4.5e-3 (l2_4p5e_3)`: the chart's x for `entry`.

    The entry's name identifies the point and makes the label text: plotly would put numeric
    strings ("0", "1e-4") on a linear axis, where rate 0 and 1e-4 overlap.
    """
    if rate < 0:
        raise ValueError(f"L2 rate {rate} is negative")
    if rate == 0:
        return f"0 ({entry})"
    mantissa, exponent = f"{rate:.4e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)} ({entry})"


def _column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: params.`l2`, metrics.`val_error`."""
    return f"{kind}.`{key}`"


def sweep_view_key(parent_id: str) -> str:
    return f"{_SECTION}-{parent_id}"


def sweep_chart_key(parent_id: str) -> str:
    return f"{_SECTION}-{parent_id}{_CHART_SUFFIX}"


def stale_sweep_views(tags: Mapping[str, str], keep: int = SWEEP_VIEWS_KEPT) -> list[str]:
    """Of an experiment's tags, the lab's sweep views (table and chart) beyond those of the
    newest `keep` sweeps (by when they were saved), oldest first. Views a user saved are
    never among them."""
    prefix = SHARED_VIEW_TAG_PREFIX + _SECTION + "-"
    ours: list[tuple[int, str, str]] = []
    for tag, value in tags.items():
        if tag.startswith(prefix):
            try:
                saved_at = int(json.loads(value)["createdAt"])
            except (ValueError, KeyError, TypeError):
                saved_at = 0  # unreadable: the first to go
            sweep = tag.removeprefix(prefix).removesuffix(_CHART_SUFFIX)
            ours.append((saved_at, tag, sweep))
    newest: dict[str, int] = {}
    for saved_at, _, sweep in ours:
        newest[sweep] = max(saved_at, newest.get(sweep, saved_at))
    kept = set(sorted(newest, key=lambda s: (newest[s], s))[max(len(newest) - keep, 0) :])
    return [tag for _, tag, sweep in sorted(ours) if sweep not in kept]


def _sweep_runs(parent_id: str) -> str:
    return f"tags.`mlflow.parentRunId` = '{parent_id}'"


def figure_words(task: Task) -> str:
    """The chart's and links' words for the task's validation figure."""
    return f"validation {task.word}"


def sweep_view_state(
    parent_id: str, metrics: list[str], task: Task
) -> dict:
    """The runs table of one sweep: its model runs, best on validation first (the task's
    validation figure: `val_error`, or `val_rmse`), with the columns `l2`, `metrics` in this
    order and `chosen`; metric columns wide enough for 5 significant digits."""
    columns = [
        _column("params", "l2"),
        *(_column("metrics", m) for m in metrics),
        _column("tags", CHOSEN_TAG),
    ]
    return {
        "searchFilter": _sweep_runs(parent_id),
        "orderByKey": _column("metrics", task.val_figure),
        "orderByAsc": True,
        "selectedColumns": columns,
        # The grid otherwise orders a group's columns by name: test_error before val_error.
        "columnOrder": columns,
        "columnWidths": {column: 130 for column in columns},
        "runsHiddenMode": "SHOW_ALL",
    }


def sweep_chart_state(parent_id: str, task: Task) -> dict:
    """The chart of one sweep: the task's validation figure (error, or RMSE) against
    `RATE_PARAM`, one labelled x per single-rate entry in the order of the rates, on a card
    as wide as the panel."""
    val, words = task.val_figure, figure_words(task)
    return {
        "searchFilter": f"{_sweep_runs(parent_id)} and {_column('params', RATE_PARAM)} LIKE '%'",
        # Descending: the UI plots the rows last first, so the axis reads rate 0 first.
        "orderByKey": _column("metrics", LOG10_L2_METRIC),
        "orderByAsc": False,
        "selectedColumns": [_column("params", "l2"), _column("metrics", val)],
        "runsHiddenMode": "SHOW_ALL",  # charts otherwise show the first 10 runs only
        "runListHidden": True,  # the x labels name the entries; the panel gets the width
        "compareRunSections": [
            {
                "uuid": _SECTION,
                "name": "L2 sweep",
                "display": True,
                "isReordered": False,
                "columns": 1,
                "cardHeight": CHART_CARD_HEIGHT,
            }
        ],
        "compareRunCharts": [
            {
                "uuid": f"{val.replace('_', '-')}-vs-l2-rate",
                "type": "SCATTER",
                "displayName": f"{words} vs L2 rate",
                "metricSectionId": _SECTION,
                "deleted": False,
                "isGenerated": False,
                "runsCountToCompare": 100,
                "xaxis": {"key": RATE_PARAM, "type": "PARAM"},
                "yaxis": {"key": val, "type": "METRIC"},
            }
        ],
    }


def saved_view(name: str, state: dict) -> str:
    """The tag value of a saved view: the envelope the UI writes, listed in its Views menu."""
    now = int(time.time() * 1000)
    return json.dumps(
        {"name": name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    )


def description(
    chosen: str | None, verdict: str | None, experiment_id: str, parent_id: str,
    run_ids: list[str], task: Task,
) -> str:  # fmt: skip
    """The sweep parent run's description (Markdown): the verdict first, then where to look."""
    words = figure_words(task)
    if chosen:
        first = f"**Chosen: {chosen}.** {verdict or ''}".rstrip()
    else:
        first = verdict or "No entry was chosen."
    table, chart = sweep_view_key(parent_id), sweep_chart_key(parent_id)
    return (
        f"{first}\n\n"
        f"[The sweep by {words}]({view_link(experiment_id, table)}) · "
        f"[Chart: {words} vs L2 rate]({view_link(experiment_id, chart, chart=True)})"
        f" · [Compare the runs side by side]({compare_link(experiment_id, run_ids)}) · "
        f"[All runs of the experiment]({runs_link(experiment_id)})"
    )

"""Links into the MLflow UI, and the saved view of a sweep that opens on its answer.

Links are relative (`#/...`) so a run's description works on any host and port; `absolute`
puts the tracking server (or `mlflow ui`'s default address) in front for the terminal.

The saved view follows what MLflow 3.15+'s UI writes when a user saves a view ("Save view"):
an experiment tag `mlflow.sharedViewState.<key>` holding the envelope
`{"name", "createdAt", "updatedAt", "state"}`, where `state` is the JSON of the runs page's
search facets and UI state (columns such as params.`l2`, sort key metrics.`val_error`, charts).
The UI does not share which rows are expanded, so the view filters on the sweep's model runs
instead: they then show as rows of their own, without their parent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

# Where `mlflow ui` serves by default: the address printed for the local store.
DEFAULT_UI = "http://127.0.0.1:5000"
SHARED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
# The x of the view's chart: log10 of the rate, rate 0 a decade below the smallest non-zero
# rate (as in the DVC plots); MLflow's scatter charts have no log axis of their own.
LOG10_L2_METRIC = "log10_l2"
_SECTION = "l2-sweep"
# MLflow's UI refuses to save a view once an experiment holds 40 ("This experiment has
# reached the maximum of 40 saved views"). Each sweep saves one, so the lab keeps only the
# newest few of its own: a user's views always have room.
SWEEP_VIEWS_KEPT = 10


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


def _column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: params.`l2`, metrics.`val_error`."""
    return f"{kind}.`{key}`"


def sweep_view_key(parent_id: str) -> str:
    return f"{_SECTION}-{parent_id}"


def stale_sweep_views(tags: Mapping[str, str], keep: int = SWEEP_VIEWS_KEPT) -> list[str]:
    """Of an experiment's tags, the lab's sweep views beyond the newest `keep` (by when
    they were saved), oldest first. Views a user saved are never among them."""
    ours = []
    for tag, value in tags.items():
        if tag.startswith(SHARED_VIEW_TAG_PREFIX + _SECTION + "-"):
            try:
                saved_at = int(json.loads(value)["createdAt"])
            except (ValueError, KeyError, TypeError):
                saved_at = 0  # unreadable: the first to go
            ours.append((saved_at, tag))
    ours.sort()
    return [tag for _, tag in ours[: max(len(ours) - keep, 0)]]


def sweep_view_state(parent_id: str, metrics: list[str]) -> dict:
    """The runs page of one sweep: its model runs, columns `l2` and `metrics`, best on
    validation first, and a chart of validation error against log10 of the rate."""
    return {
        "searchFilter": f"tags.`mlflow.parentRunId` = '{parent_id}'",
        "orderByKey": _column("metrics", "val_error"),
        "orderByAsc": True,
        "selectedColumns": [_column("params", "l2"), *(_column("metrics", m) for m in metrics)],
        "runsHiddenMode": "SHOW_ALL",  # charts otherwise show the first 10 runs only
        "compareRunSections": [
            {"uuid": _SECTION, "name": "L2 sweep", "display": True, "isReordered": False}
        ],
        "compareRunCharts": [
            {
                "uuid": "val-error-vs-log10-l2",
                "type": "SCATTER",
                "displayName": "validation error vs log10(L2 rate)",
                "metricSectionId": _SECTION,
                "deleted": False,
                "isGenerated": False,
                "runsCountToCompare": 100,
                "xaxis": {"key": LOG10_L2_METRIC, "type": "METRIC"},
                "yaxis": {"key": "val_error", "type": "METRIC"},
            }
        ],
    }


def saved_view(name: str, state: dict) -> str:
    """The tag value of a saved view: the envelope the UI writes, listed in its Views menu."""
    now = int(time.time() * 1000)
    return json.dumps(
        {"name": name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    )


def description(best_entry: str, experiment_id: str, view_key: str, run_ids: list[str]) -> str:
    """The sweep parent run's description (Markdown): the answer, and where to look next."""
    return (
        f"Best on validation error: **{best_entry}**. "
        f"[The sweep by validation error]({view_link(experiment_id, view_key)}) · "
        f"[Chart: validation error vs L2 rate]({view_link(experiment_id, view_key, chart=True)})"
        f" · [Compare the runs side by side]({compare_link(experiment_id, run_ids)}) · "
        f"[All runs of the experiment]({runs_link(experiment_id)})"
    )

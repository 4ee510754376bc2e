"""Links into the MLflow UI, relative (`#/...`) so a run's description works on any host and
port; `absolute` puts the tracking server (or `mlflow ui`'s default address) in front."""

from __future__ import annotations

import json

# Where `mlflow ui` serves by default: the address printed for the local store.
DEFAULT_UI = "http://127.0.0.1:5000"


def runs_link(experiment_id: str) -> str:
    """The experiment's runs table; MLflow 3 otherwise opens a new browser on its GenAI view."""
    return f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def compare_link(experiment_id: str, run_ids: list[str]) -> str:
    """The UI's compare view of `run_ids`: params (`l2`) and metrics side by side."""
    runs = json.dumps(run_ids, separators=(",", ":"))
    return f'#/compare-runs?runs={runs}&experiments=["{experiment_id}"]'


def absolute(link: str, tracking_uri: str) -> str:
    """`link` on the tracking server at `tracking_uri`, or on `mlflow ui` for a local store."""
    is_server = tracking_uri.startswith(("http://", "https://"))
    return f"{(tracking_uri if is_server else DEFAULT_UI).rstrip('/')}/{link}"


def description(best_entry: str, experiment_id: str, run_ids: list[str]) -> str:
    """The sweep parent run's description (Markdown): the answer, and where to look next."""
    return (
        f"Best on validation error: **{best_entry}**. "
        f"[Compare the sweep's runs (l2, errors)]({compare_link(experiment_id, run_ids)}) · "
        f"[All runs of the experiment]({runs_link(experiment_id)})"
    )

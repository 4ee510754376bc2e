"""The demonstration's tables as Markdown, rendered from its results (docs/fine-tuning.md
quotes these files; tests/test_docs_figures.py checks the quotes are theirs)."""

from __future__ import annotations

import re

from pipeline.demos.results import EntryResult, best_per_approach

TITLES = {
    "similar": "Similar target: digits 5-9",
    "dissimilar": "Dissimilar target: digits 5-9, pixels permuted",
}


def _rate(result: EntryResult) -> str:
    return "" if result.rate is None else f"{result.rate:g}"


def _versus(result: EntryResult) -> str:
    if result.chosen:
        return "chosen"
    verdict = "yes" if result.told_apart else "no"
    return f"{verdict} (Holm p = {result.holm_p:.2g})"


def approaches_table(results: list[EntryResult]) -> str:
    rows = [
        "| approach | best rate | entry | CV error ± SE | test error [95%] | told apart from"
        " the chosen entry |",
        "|---|---|---|---|---|---|",
    ]
    for r in best_per_approach(results):
        rows.append(
            f"| {r.approach} | {_rate(r)} | {r.entry} | {r.cv_error:.3f} ± {r.cv_se:.3f} "
            f"| {r.test_error:.3f} [{r.test_ci_low:.3f}, {r.test_ci_high:.3f}] | {_versus(r)} |"
        )
    return "\n".join(rows)


def entries_table(results: list[EntryResult]) -> str:
    """Every entry, in the sweep's order: how the figures move with each approach's rate."""
    rows = [
        "| entry | approach | rate | CV error ± SE | test error [95%] | told apart from the"
        " chosen entry |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.entry} | {r.approach} | {_rate(r)} | {r.cv_error:.3f} ± {r.cv_se:.3f} "
            f"| {r.test_error:.3f} [{r.test_ci_low:.3f}, {r.test_ci_high:.3f}] | {_versus(r)} |"
        )
    return "\n".join(rows)


def _layers(results: list[EntryResult]) -> list[str]:
    names = {m[1] for r in results for k in r.distances if (m := re.match(r"rel_dist_(\w+)", k))}
    return sorted(names)


def distances_table(results: list[EntryResult]) -> str:
    """Per entry that starts from the source model: ‖w - w0‖/‖w0‖ per layer and Σ(w - w0)²."""
    layers = _layers(results)
    if not layers:
        return "evaluate wrote no distances from the start (rel_dist_<layer>) for these models."
    header = " | ".join(f"{layer}: ‖w-w0‖/‖w0‖" for layer in layers)
    rows = [f"| entry | rate | {header} | Σ(w-w0)² |", "|---|---|" + "---|" * (len(layers) + 1)]
    for r in results:
        if not r.distances:
            continue
        cells = " | ".join(f"{r.distances[f'rel_dist_{layer}']:.3g}" for layer in layers)
        rows.append(f"| {r.entry} | {_rate(r)} | {cells} | {r.distances['sum_sq_dist']:.3g} |")
    return "\n".join(rows)


def target_page(results: list[EntryResult], summary: dict) -> str:
    """`<target>.md`: the approaches table, the refit's answer, the distances table."""
    refit = summary["refit"]
    answer = (
        f"The lab's answer: **{summary['chosen']}**, refitted on all {refit['train_rows']} "
        f"labelled rows, test error {refit['test_value']:.3f}, 95% interval "
        f"[{refit['test_ci_low']:.3f}, {refit['test_ci_high']:.3f}] ({refit['test_rows']} "
        f"test rows)."
    )
    title = TITLES.get(summary["target"], summary["target"])
    parts = (
        f"### {title}",
        "Each approach at its best rate (lowest CV error):",
        approaches_table(results),
        answer,
        "Every entry:",
        entries_table(results),
        "Distance from the start of each model that started from the source model, per layer"
        " (the new head has no start):",
        distances_table(results),
    )
    return "\n\n".join(parts) + "\n"

"""`choosing.md`: the decision, then the three questions, in words, from choosing.Analysis."""

from __future__ import annotations

import pandas as pd

from pipeline.choosing import ALL, Analysis, Decision
from pipeline.choosing.data_size import DataEquivalent
from pipeline.choosing.layers import HEATMAP_COLUMNS, LayerVerdict, layer_heatmap_data
from pipeline.choosing.next_rates import NO_DIFFERENCE, OFF_AXIS, Bracket, Neighbour
from pipeline.choosing.points import L2_SP, Versus
from pipeline.core.task import Task
from pipeline.reporting import decision as decision_words
from pipeline.reporting.markdown import table

TITLE = "# Choosing L2"


def plot_data(analysis: Analysis) -> dict[str, pd.DataFrame]:
    """The data files of dvc.yaml's choosing plots. Both are always written, header only when
    the sweep lacks the entries: `dvc plots show` warns about a declared plot whose file is
    missing."""
    heatmap = pd.DataFrame(columns=HEATMAP_COLUMNS)
    if analysis.grid is not None:
        heatmap = layer_heatmap_data(analysis.grid)
    return {"layer_heatmap": heatmap, "error_vs_train_size": analysis.curves}


def markdown(analysis: Analysis, task: Task) -> str:
    """The page; the layer grid, the data-size curves and the bracket show the task's
    headline figure (error, or RMSE in the target's units), the decision its own."""
    word = task.word
    parts = [TITLE, ""]
    if analysis.decision is not None:
        parts += decision_words.section(analysis.decision)
    if analysis.grid is not None:
        parts += _layers(analysis, task)
    if not analysis.curves.empty:
        parts += _data_size(analysis.equivalents, word)
    if analysis.bracket is not None:  # only with a decision: it judges the bracket's pairs
        parts += _next(analysis.bracket, analysis.decision, task)
    return "\n".join(parts).rstrip() + "\n"


def _margin(versus: Versus, test: str) -> str:
    return f"chance ({test} p = {versus.p_value:.2g})"


def _layers(analysis: Analysis, task: Task) -> list[str]:
    grid, tied = analysis.grid, analysis.tied_cells
    rows = []
    for layer, row in grid.iterrows():
        cells = [
            "" if pd.isna(v) else f"{v:.3f}" + (" ≈" if (layer, rate) in tied else "")
            for rate, v in row.items()
        ]
        rows.append(["all layers" if layer == ALL else f"{layer} alone", *cells])
    mark = "; ≈ marks the cells a paired test cannot tell apart from the best:" if tied else ":"
    folds = "the root of the mean CV MSE" if task.is_regression else "mean CV error"
    lines = [
        "## Which layer needs it",
        "",
        f"Validation {task.word} (mean over seeds when there are several; {folds} "
        f"with folds), layers x rates (`plots/layer_heatmap.png`){mark}",
        "",
        *table(["", *(f"{r:g}" for r in grid.columns)], rows),
        "",
    ]
    if analysis.layers is not None:
        lines += _layer_verdict(analysis.layers, analysis.test, task.word)
    return [*lines, ""]


def _layer_verdict(verdict: LayerVerdict, test: str, word: str = "error") -> list[str]:
    zero, top = verdict.zero, verdict.top
    rows = []
    for layer, p in verdict.best_of.items():
        gain = f"{p.val - zero.val:+.3f}" if zero else ""
        spread = f" ± {p.val_std:.3f}" if p.val_std else ""
        label = "all layers" if layer == ALL else f"{layer} alone"
        rows.append([label, f"{p.rate:g}", f"{p.val:.3f}{spread}", gain])
    base = f" (rate 0: {zero.val:.3f})" if zero else ""
    tie = f" (tied with {', '.join(verdict.ties)})" if verdict.ties else ""
    text = [
        "",
        f"**{top.layer}'s L2 matters most**{tie}: alone, at rate {top.rate:g}, it brings the "
        f"validation {word} to {top.val:.3f}{base}; the other layers alone reach "
        + ", ".join(f"{p.val:.3f} ({p.layer})" for p in verdict.others)
        + ".",
    ]
    if verdict.runner is not None:
        runner, margin = verdict.runner.other, _margin(verdict.runner, test)
        if not verdict.runner.apart:
            text.append(f"{top.layer} and {runner.layer} cannot be told apart (within {margin}).")
        else:
            text.append(f"It beats the next layer, {runner.layer}, by more than {margin}.")
    if verdict.top_is_largest:
        text.append(
            f"{top.rate:g} is the largest rate tried on {top.layer} alone: its best rate may be "
            f"higher (add larger rates to the grid)."
        )
    if verdict.vs_zero is not None and not verdict.vs_zero.apart:
        text.append(
            f"No layer's L2 helps by more than {_margin(verdict.vs_zero, test)}: on this model "
            f"and data the layers cannot be ranked."
        )
    if verdict.vs_all is not None:
        everything, margin = verdict.vs_all.other, _margin(verdict.vs_all, test)
        at = f"{everything.val:.3f} at {everything.rate:g}"
        if not verdict.vs_all.apart:
            said = f"**as good as** all layers ({at}): the difference is within {margin}."
        elif top.val < everything.val:
            said = f"**better than** all layers ({at}) by more than {margin}."
        else:
            said = (
                f"**not as good as** all layers ({at}): {top.val - everything.val:.3f} "
                f"worse, more than {margin}."
            )
        text.append(f"Regularizing {top.layer} alone is {said}")
    header = ["L2 on", "best rate", f"val {word}", "vs rate 0"]
    return [*table(header, rows), *text]


def _equivalent(e: DataEquivalent, word: str = "error") -> str:
    at = f"at {e.size} samples, L2 at rate {e.rate:g}"
    if e.no_gain:
        return (
            f"{at} (best on validation) does not reach a lower test {word} than rate 0 "
            f"({e.test_value:.3f})"
        )
    if e.samples is None:
        return (
            f"{at} reaches a test {word} ({e.test_value:.3f}) that rate 0 does not reach even "
            f"with {e.largest} samples ({e.largest_value:.3f}): the curves do not cross within "
            f"the grid"
        )
    return (
        f"{at} reaches the {word} that rate 0 needs about {e.samples:.0f} samples for (test "
        f"{word} {e.test_value:.3f}; {e.samples / e.size:.1f}x the data)"
    )


def _data_size(equivalents: tuple[DataEquivalent, ...], word: str = "error") -> list[str]:
    lines = [
        "## Would more data do better?",
        "",
        f"Test {word} vs training-set size (`plots/error_vs_train_size.png`): rate 0 and, at "
        f"each size, the rate with the lowest validation {word}. Subsets are nested.",
        "",
    ]
    for noise in sorted({e.noise for e in equivalents}):
        lines.append(f"With label noise {noise:g}:")
        lines += [f"- {_equivalent(e, word)}." for e in equivalents if e.noise == noise]
        lines.append("")
    if not equivalents:
        lines += ["Rate 0 is best on validation at every size: L2 has no data-equivalent.", ""]
    return lines


def _next(bracket: Bracket, decision: Decision, task: Task) -> list[str]:
    """What to try next. Every pair of rates it judges is a row of the Decision table, quoted
    with that row's adjusted p (choosing.next_rates)."""
    best, figure = bracket.best, decision_words.figure_words(decision)
    if task.is_regression:  # the points carry RMSE (choosing.points), the decision MSE
        figure = "CV RMSE" if decision.folds else "validation RMSE"
    where = "folds of the pooled rows" if decision.folds else "data's training split"
    neighbours = [p for p in (bracket.lower, bracket.upper) if p is not None]
    spread = f" ± {best.val_std:.3f}" if best.val_std else ""
    figure = f"mean {figure} over seeds" if best.val_std else figure
    tried = ", ".join(f"{p.rate:g} ({p.val:.3f})" for p in neighbours) or "none"
    on_axis = best.entry == decision.chosen.name
    if not on_axis:
        opening = (
            f"The chosen entry, {decision.chosen.name}, is not one L2 rate on all layers: the "
            f"Decision table compares it with each rate, but no rate with its neighbours. On "
            f"that axis the lowest is {best.rate:g} ({best.entry}, {figure} {best.val:.3f}"
            f"{spread}); neighbours tried: {tried}."
        )
    else:
        rate = "l2_sp rate (toward the start)" if bracket.axis == L2_SP else "rate"
        opening = (
            f"The chosen {rate}, **{best.rate:g}** ({best.entry}, {figure} {best.val:.3f}{spread}; "
            f"all layers, {where}); neighbours tried: {tried}. Each pair is judged as in the "
            f"Decision table ({decision.test}, {decision.correction}-adjusted over its "
            f"{len(decision.comparisons)} comparisons)."
        )
    lines = ["## What to try next", "", opening, ""]
    if on_axis and not neighbours:
        lines.append(
            "One rate alone says nothing about where a better one lies: train a grid around it "
            "(`grid.rates`, docs/choosing-l2.md) before bracketing."
        )
    if bracket.tied:
        lines.append(
            f"{best.rate:g} **cannot be told apart** from "
            + " and ".join(_judged(n, decision) for n in bracket.tied)
            + ": a rate between them would sit on the same plateau and could not change the "
            "decision, so no bracket is proposed on that side. More validation rows (more "
            "data) or more seeds (`base.repeat_seeds`) would narrow it."
        )
    for n in bracket.apart:
        pair = (f"{best.rate:g}", _judged(n, decision))
        winner, loser = pair if n.chosen_is_better else pair[::-1]
        lines.append(f"{winner} beats {loser}.")
    return [*lines, "", _ending(bracket, decision)] if not bracket.proposed else [
        *lines,
        "",
        "Log-spaced rates between the neighbours (`plots/next_rates.png`), added to the "
        "sweep in one queued experiment (every entry and setting kept as now, so its decision "
        "compares the new rates with every rate tried, on the same rows):",
        "",
        "```bash",
        *bracket.commands,
        "```",
    ]  # fmt: skip


def _ending(bracket: Bracket, decision: Decision) -> str:
    """Why no rate is proposed, in one sentence."""
    if bracket.held == NO_DIFFERENCE:
        zero = decision.against_zero
        return (
            f"L2 makes no measurable difference here: rate 0 ({zero.other.name}) cannot be "
            f"told apart from {decision.chosen.name} ({decision.correction}-adjusted p = "
            f"{decision_words.p_words(zero.p_adjusted)}, the Decision table's), and no new "
            f"rate could change that answer, so no bracket is proposed."
        )
    if bracket.held == OFF_AXIS:
        return "No bracket is proposed: the Decision table judges no pair of rates."
    if bracket.apart and not bracket.tied:
        return "Every rate of the bracket has been tried."
    return "No new rates to propose: none could change the decision."


def _judged(neighbour: Neighbour, decision: Decision) -> str:
    """A neighbour with its row of the Decision table: "0.003 (l2_3e_3, Holm-adjusted
    p = 0.0625)"."""
    return (
        f"{neighbour.point.rate:g} ({neighbour.point.entry}, {decision.correction}-adjusted "
        f"p = {decision_words.p_words(neighbour.comparison.p_adjusted)})"
    )

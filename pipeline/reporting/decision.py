"""The decision in words: its one-line verdict, its section of `choosing.md`, and the figures
and strings it leaves for the later stages (best.json's numbers, reports/decision.json).

Classification decides on the error rate, with Wilson intervals of counts of wrong rows.
Regression decides on MSE, the mean of the per-row squared errors (squared target units), and
the pages give RMSE, its square root in the target's units, beside it; its test interval is
the decision's own (a bootstrap over the test rows), not a count's.
"""

from __future__ import annotations

import math

from pipeline.choosing import Decision
from pipeline.choosing.decision import Comparison
from pipeline.choosing.statistics import error_interval
from pipeline.core import contracts
from pipeline.core.task import Task
from pipeline.reporting.markdown import table
from pipeline.reporting.rate_zero import other_start_words, rate_zero_words

# How the pages name the figure a decision ranks on (Decision.figure).
FIGURE_WORDS = {
    "val_error": "validation error",
    "cv_error_mean": "mean CV error",
    "val_mse": "validation MSE",
    "cv_mse_mean": "mean CV MSE",
}
# The test figure of a decision (Decision.test_figure).
TEST_WORDS = {"test_error": "test error", "test_rmse": "test RMSE"}
# Regression's decision figures: MSE, shown with its root, RMSE, beside it.
SQUARED_FIGURES = frozenset({"val_mse", "cv_mse_mean"})


def figure_words(decision: Decision) -> str:
    return FIGURE_WORDS.get(decision.figure, decision.figure)


def on_squared_errors(decision: Decision) -> bool:
    """Whether the decision ranks on MSE (regression) rather than an error rate."""
    return decision.figure in SQUARED_FIGURES


def mse_words(value: float, se: float) -> str:
    """MSE ± its SE and RMSE beside it: "2890 ± 410 (RMSE 53.76)"."""
    return f"{value:.4g} ± {se:.4g} (RMSE {math.sqrt(value):.4g})"


def test_interval_words(decision: Decision, value: float, low: float, high: float, n: int) -> str:
    """A test figure with its 95% interval: Wilson of a count of wrong rows (classification),
    the decision's bootstrap interval of RMSE (regression)."""
    if not on_squared_errors(decision):
        return interval_words(value, n, "test rows")
    return f"{value:.4g}, 95% interval [{low:.4g}, {high:.4g}] (bootstrap over {n} test rows)"


def p_words(p: float) -> str:
    """An adjusted p-value as every page quotes it (the Decision table, What to try next)."""
    return f"{p:.3g}"


def interval_words(value: float, n: int, rows: str) -> str:
    """An error measured on `n` rows with its 95% Wilson interval, written alike for the
    validation and the test figure: "0.119, 95% interval [0.085, 0.163] (Wilson, 32 of 270
    validation rows)"; at 0 errors "0.000, at most 0.071 at 95% (...)", at n errors "1.000, at
    least 0.929 at 95% (...)": an interval of width 0 would claim a certainty nobody has."""
    wrong = round(value * n)  # figures are written to 5 significant digits
    low, high = error_interval(wrong, n)
    if wrong == 0:
        bounds = f"at most {high:.3f} at 95%"
    elif wrong == n:
        bounds = f"at least {low:.3f} at 95%"
    else:
        bounds = f"95% interval [{low:.3f}, {high:.3f}]"
    return f"{value:.3f}, {bounds} (Wilson, {wrong} of {n} {rows})"


def figure_with_spread(decision: Decision) -> str:
    """The chosen entry's figure as the verdict says it: with folds its mean ± the SE the rule
    uses; without, the validation error with its Wilson interval."""
    chosen = decision.chosen
    if on_squared_errors(decision):
        over = f"{decision.folds} folds" if decision.folds else "the squared errors"
        return (
            f"{mse_words(chosen.value, chosen.se)}, SE over {over}; paired tests on "
            f"{decision.n_rows} held-out rows"
        )
    if decision.folds:
        return (
            f"{chosen.value:.3f} ± {chosen.se:.3f} (SE over {decision.folds} folds, at least "
            f"the Wilson SE; paired tests on {decision.n_rows} held-out rows)"
        )
    return interval_words(chosen.value, decision.n_rows, "validation rows")


def fallback_words(decision: Decision) -> str:
    """Why one_se fell back to min."""
    choice = decision.choice
    names = ", ".join(choice.unordered)
    if choice.fallback == "no_rates":
        return f"{names} within one SE has no L2 rate to order by"
    if choice.fallback == "mixed":
        return f"{names} within one SE mixes l2 and l2_sp, which are not ordered against each other"
    if choice.fallback == "starts":
        where = choice.best.start or "scratch"
        return f"the entries within one SE start differently ({choice.top} from {where} vs {names})"
    # Fine-tuning: l2 and l2_sp are separate rates, neither stronger than the other.
    rates = "every layer's l2 and l2_sp rate" if choice.chosen.start else "every layer"
    return (
        f"the entries within one SE are not ordered by rate ({choice.top} vs {names}: neither "
        f"is more regularized on {rates})"
    )


def verdict(decision: Decision) -> str:
    """One line for the console, reports/decision.json and the MLflow parent's description."""
    chosen, tied, n = decision.chosen, decision.tied, len(decision.comparisons)
    rule = decision.choice.rule + (
        f" (asked {decision.rule_asked})" if decision.fell_back else ""
    )
    judged = f"{decision.test}, {decision.correction}"
    text = (
        f"chosen by {rule}: {chosen.name}, {figure_words(decision)} "
        f"{figure_with_spread(decision)}"
    )
    if tied:
        text += (
            f"; cannot be told apart from {len(tied)} of {n} other entries ({judged}, "
            f"p >= {decision.alpha:g}): {', '.join(tied)}"
        )
    elif n:
        text += f"; told apart from every other entry ({judged}, p < {decision.alpha:g})"
    zero = rate_zero_words(decision)
    if decision.zero == chosen.name:
        text += "; it is rate 0: L2 does not help here"
    elif decision.l2_unmeasurable:
        text += f"; L2 makes no measurable difference here ({zero} cannot be told apart)"
    elif decision.l2_measurable and chosen.value < decision.against_zero.other.value:
        # Only within one start is the difference L2's.
        helps = "" if other_start_words(decision) else "L2 helps: "
        text += f"; {helps}{zero} is measurably worse"
    elif decision.l2_measurable:
        text += f"; {zero} is measurably better than the chosen entry"
    return text + other_start_words(decision)


def _chosen_figure(decision: Decision) -> str:
    """The chosen entry's figure and the SE the rule uses (statistics.choosing_se), in words."""
    chosen = decision.chosen
    if on_squared_errors(decision):
        where = (
            f"over {decision.folds} folds of the {decision.n_rows} training and validation "
            f"rows pooled"
            if decision.folds
            else f"from the squared errors of the {decision.n_rows} validation rows"
        )
        return (
            f"{mse_words(chosen.value, chosen.se)}: the mean squared error in squared target "
            f"units and its standard error {where}; RMSE, its square root, is in the target's "
            f"units"
        )
    if decision.folds:
        return (
            f"{chosen.value:.3f} ± {chosen.se:.3f} (the larger of the standard error over "
            f"{decision.folds} stratified folds of the {decision.n_rows} training and "
            f"validation rows pooled and the Wilson SE on those rows)"
        )
    return (
        f"{interval_words(chosen.value, decision.n_rows, 'validation rows')}; its SE is "
        f"{chosen.se:.3f} (half that interval over 1.96; one validation sample is "
        f"{1 / decision.n_rows:.4f})"
    )


def section(decision: Decision) -> list[str]:
    """The `## Decision` section of choosing.md."""
    chosen, best, figure = decision.chosen, decision.choice.best, figure_words(decision)
    answer = decision.answer[0]
    rule = (
        f"the lowest {figure}."
        if decision.rule_asked == "min"
        else "the most regularized entry within one standard error of the lowest "
        "(ESL §7.10; layer by layer: every layer's rate at least as large)."
    )
    squared = on_squared_errors(decision)
    lines = ["## Decision", "", f"Rule **{decision.rule_asked}**: {rule}"]
    if squared:
        lines.append(
            "The decision is made on MSE, the mean of the per-row squared errors (in squared "
            "target units): the standard errors, the one-SE rule and the paired tests all work "
            "on those per-row squared errors. RMSE, its square root in the target's units, is "
            "shown beside it."
        )
    if decision.fell_back:
        lines.append(f"It falls back to `min`: {fallback_words(decision)}.")
    lines += ["", f"**Chosen: {chosen.name}**, {figure} {_chosen_figure(decision)}."]
    if chosen != best:
        lowest = (
            mse_words(best.value, best.se) if squared else f"{best.value:.3f} ± {best.se:.3f}"
        )
        threshold = f"{decision.choice.threshold:{'.4g' if squared else '.3f'}}"
        lines.append(f"The lowest is {best.name} ({lowest}); one SE above it is {threshold}.")
    test = TEST_WORDS.get(decision.test_figure, decision.test_figure)
    _, low, high = decision.answer
    if decision.refit is not None:
        said = test_interval_words(decision, answer, low, high, decision.refit.test_rows)
        lines.append(
            f"**Refit** on all {decision.refit.train_rows} training and validation rows: "
            f"{test} {said}. "
            f"This is the lab's answer; the test split was used once, by the refit, after the "
            f"folds chose."
        )
    else:
        said = test_interval_words(decision, answer, low, high, decision.test_rows)
        lines.append(f"Its {test} is {said}; reported, not used to choose.")
    said = verdict(decision)
    lines += ["", said[0].upper() + said[1:] + ".", ""]
    if not decision.comparisons:
        return lines
    short = decision.test.removeprefix("exact ")
    if squared:
        lines += [
            f"Against every other candidate on the same {decision.n_rows} held-out rows: rows "
            f"where each one's squared error is the larger, the {decision.test} p-value of the "
            f"per-row squared-error differences, {decision.correction}'s adjustment over the "
            f"{len(decision.comparisons)} comparisons, and a paired bootstrap 95% interval of "
            f"the RMSE difference (other - chosen, target units).",
            "",
        ]
        header = ["entry", f"{figure} ± SE (RMSE)", "chosen worse", "other worse"]
        header += [f"{short} p", f"{decision.correction} p", "RMSE difference 95%"]
    else:
        lines += [
            f"Against every other candidate on the same {decision.n_rows} held-out rows: rows "
            f"only one of the two gets wrong, the {decision.test} p-value, "
            f"{decision.correction}'s adjustment over the {len(decision.comparisons)} "
            f"comparisons, and a paired bootstrap 95% interval of the error difference (other - "
            f"chosen).",
            "",
        ]
        header = ["entry", f"{figure} ± SE", "only chosen wrong", "only other wrong"]
        header += [f"{short} p", f"{decision.correction} p", "difference 95%"]
    rows = [_comparison_row(c, squared) for c in decision.comparisons]
    return [*lines, *table([*header, "told apart"], rows), ""]


def _comparison_row(c: Comparison, squared: bool = False) -> list[str]:
    test = c.test
    figure = (
        mse_words(c.other.value, c.other.se) if squared
        else f"{c.other.value:.3f} ± {c.other.se:.3f}"
    )  # fmt: skip
    interval = (
        f"[{test.diff_low:+.4g}, {test.diff_high:+.4g}]" if squared
        else f"[{test.diff_low:+.3f}, {test.diff_high:+.3f}]"
    )  # fmt: skip
    return [
        c.other.name,
        figure,
        str(test.only_a_worse),
        str(test.only_b_worse),
        f"{test.p_value:.3g}",
        p_words(c.p_adjusted),
        interval,
        "yes" if c.apart else "no",
    ]


def numbers(decision: Decision) -> dict[str, float | int]:
    """The decision's figures for best.json (a DVC metrics file: numbers only), each named
    after what it holds; reports/decision.json says which figure `chosen_figure` is."""
    answer, low, high = decision.answer
    against = decision.against_zero
    found = {
        "chosen_figure": decision.chosen.value,
        "chosen_se": decision.chosen.se,
        "n_tied": len(decision.tied),
        "answer": answer,
        "answer_ci_low": low,
        "answer_ci_high": high,
    }
    return found | ({"p_vs_rate_0": against.p_adjusted} if against is not None else {})


def summary(sweep, decision, analysis, note, task: Task) -> contracts.DecisionSummary:
    """reports/decision.json: the decision (a Decision, or None) in the report's words."""
    said = {"best_entry": str(sweep.iloc[0]["entry"]), "data_note": note, "task": task.name}
    if analysis.bracket is not None:
        said["next_commands"] = analysis.bracket.commands
    if decision is None:
        return contracts.DecisionSummary(**said)
    return contracts.DecisionSummary(
        **said,
        chosen_entry=decision.chosen.name,
        rule=decision.choice.rule,
        figure=decision.figure,
        test_figure=decision.test_figure,
        indistinguishable=tuple(decision.tied),
        verdict=verdict(decision),
    )

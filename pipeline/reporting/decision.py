"""The decision in words: its one-line verdict, its section of `choosing.md`, and the figures
and strings it leaves for the later stages (best.json's numbers, reports/decision.json)."""

from __future__ import annotations

from pipeline.choosing import Decision
from pipeline.choosing.decision import Comparison
from pipeline.choosing.statistics import error_interval
from pipeline.reporting.markdown import table

# How the pages name the figure a decision ranks on (Decision.figure).
FIGURE_WORDS = {"val_error": "validation error", "cv_error_mean": "mean CV error"}


def figure_words(decision: Decision) -> str:
    return FIGURE_WORDS.get(decision.figure, decision.figure)


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
    if decision.folds:
        return (
            f"{chosen.value:.3f} ± {chosen.se:.3f} (SE over {decision.folds} folds, at least "
            f"the Wilson SE; paired tests on {decision.n_rows} held-out rows)"
        )
    return interval_words(chosen.value, decision.n_rows, "validation rows")


def fallback_words(decision: Decision) -> str:
    """Why one_se fell back to min."""
    choice = decision.choice
    if choice.fallback == "no_rates":
        return f"{', '.join(choice.unordered)} within one SE has no L2 rate to order by"
    return (
        f"the entries within one SE are not ordered by rate ({choice.top} vs "
        f"{', '.join(choice.unordered)}: neither is more regularized on every layer)"
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
    if decision.zero == chosen.name:
        text += "; it is rate 0: L2 does not help here"
    elif decision.l2_unmeasurable:
        text += "; L2 makes no measurable difference here (rate 0 cannot be told apart)"
    elif decision.l2_measurable and chosen.value < decision.against_zero.other.value:
        text += "; L2 helps: rate 0 is measurably worse"
    elif decision.l2_measurable:
        text += "; rate 0 is measurably better than the chosen entry"
    return text


def _chosen_figure(decision: Decision) -> str:
    """The chosen entry's figure and the SE the rule uses (statistics.choosing_se), in words."""
    chosen = decision.chosen
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
    lines = ["## Decision", "", f"Rule **{decision.rule_asked}**: {rule}"]
    if decision.fell_back:
        lines.append(f"It falls back to `min`: {fallback_words(decision)}.")
    lines += ["", f"**Chosen: {chosen.name}**, {figure} {_chosen_figure(decision)}."]
    if chosen != best:
        lines.append(
            f"The lowest is {best.name} ({best.value:.3f} ± {best.se:.3f}); one SE above it "
            f"is {decision.choice.threshold:.3f}."
        )
    if decision.refit is not None:
        lines.append(
            f"**Refit** on all {decision.refit.train_rows} training and validation rows: "
            f"test error {interval_words(answer, decision.refit.test_rows, 'test rows')}. "
            f"This is the lab's answer; the test split was used once, by the refit, after the "
            f"folds chose."
        )
    else:
        lines.append(
            f"Its test error is {interval_words(answer, decision.test_rows, 'test rows')}; "
            f"reported, not used to choose."
        )
    said = verdict(decision)
    lines += ["", said[0].upper() + said[1:] + ".", ""]
    if not decision.comparisons:
        return lines
    lines += [
        f"Against every other candidate on the same {decision.n_rows} held-out rows: rows "
        f"only one of the two gets wrong, the {decision.test} p-value, {decision.correction}'s "
        f"adjustment over the {len(decision.comparisons)} comparisons, and a paired bootstrap "
        f"95% interval of the error difference (other - chosen).",
        "",
    ]
    short = decision.test.removeprefix("exact ")
    header = ["entry", f"{figure} ± SE", "only chosen wrong", "only other wrong"]
    header += [f"{short} p", f"{decision.correction} p", "difference 95%", "told apart"]
    return [*lines, *table(header, map(_comparison_row, decision.comparisons)), ""]


def _comparison_row(c: Comparison) -> list[str]:
    test = c.test
    return [
        c.other.name,
        f"{c.other.value:.3f} ± {c.other.se:.3f}",
        str(test.only_a_worse),
        str(test.only_b_worse),
        f"{test.p_value:.3g}",
        p_words(c.p_adjusted),
        f"[{test.diff_low:+.3f}, {test.diff_high:+.3f}]",
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

"""The decision: which entry the rule picks, with its standard error, and which entries the
validation rows cannot tell apart from it by a paired test.

Without folds the figure is each entry's validation error (its base seed's model) and its
binomial standard error over the validation rows; with `choose.folds` it is the mean CV error
and its standard error over the folds, and the held-out rows are the pooled folds (each row
predicted by the fold model that did not train on it). The chosen entry is compared with every
other candidate on the same rows: the exact McNemar test, Holm's correction over those
comparisons, and a paired bootstrap of the error difference. "L2 makes no measurable
difference here" is said when the chosen entry cannot be told from rate 0 that way. Candidates
are the entries trained on data's training split (not a pool prefix: another training set is
not a choice of L2) that did not diverge and have held-out predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.choosing.points import HeldOut
from pipeline.choosing.statistics import (
    ALPHA,
    Candidate,
    Choice,
    PairedTest,
    binomial_se,
    bootstrap_rows,
    choose,
    error_interval,
    holm,
    paired_test,
)
from pipeline.config.entries import EntrySpec

RULES = ("min", "one_se")


@dataclass(frozen=True)
class Comparison:
    """The chosen entry against one other candidate on the same held-out rows."""

    other: Candidate
    test: PairedTest
    p_holm: float

    @property
    def apart(self) -> bool:
        return self.p_holm < ALPHA


@dataclass(frozen=True)
class Decision:
    choice: Choice
    rule_asked: str
    n_rows: int  # held-out rows every figure is measured on
    comparisons: tuple[Comparison, ...]  # chosen vs every other candidate, ranked order
    zero: str | None  # the rate-0 candidate (no penalty, no decay), if trained
    test_error: float  # the chosen entry's test error: reported, never used to choose
    test_rows: int
    folds: int | None = None
    refit: dict | None = None  # refit/refit.json: the chosen entry on every pooled row

    @property
    def figure(self) -> str:
        return "mean CV error" if self.folds else "validation error"

    @property
    def se_words(self) -> str:
        if self.folds:
            return f"SE over {self.folds} folds; paired tests on {self.n_rows} held-out rows"
        return f"binomial SE, {self.n_rows} rows"

    @property
    def chosen(self) -> Candidate:
        return self.choice.chosen

    @property
    def tied(self) -> list[str]:
        """The candidates that cannot be told apart from the chosen one."""
        return [c.other.name for c in self.comparisons if not c.apart]

    @property
    def against_zero(self) -> Comparison | None:
        return next((c for c in self.comparisons if c.other.name == self.zero), None)

    @property
    def l2_measurable(self) -> bool | None:
        """Whether the chosen entry differs measurably from rate 0 (None: no rate 0 or the
        chosen entry is rate 0)."""
        against = self.against_zero
        return None if against is None else against.apart

    @property
    def test_interval(self) -> tuple[float, float]:
        if self.refit is not None:
            return self.refit["test_error_ci_low"], self.refit["test_error_ci_high"]
        return error_interval(round(self.test_error * self.test_rows), self.test_rows)

    @property
    def answer_error(self) -> float:
        """The lab's answer: the refit's test error, else the chosen entry's own."""
        return self.refit["test_error"] if self.refit is not None else self.test_error

    def verdict(self) -> str:
        """One line for the console, best.json and the MLflow parent's description."""
        chosen = self.chosen
        rule = self.choice.rule + (f" (asked {self.rule_asked})" if self.fell_back else "")
        text = (
            f"chosen by {rule}: {chosen.name}, {self.figure} {chosen.error:.3f} ± "
            f"{chosen.se:.3f} ({self.se_words})"
        )
        if self.tied:
            text += (
                f"; cannot be told apart from {len(self.tied)} of {len(self.comparisons)} "
                f"other entries (exact McNemar, Holm, p >= {ALPHA:g}): {', '.join(self.tied)}"
            )
        elif self.comparisons:
            text += f"; told apart from every other entry (exact McNemar, Holm, p < {ALPHA:g})"
        if self.zero == chosen.name:
            text += "; it is rate 0: L2 does not help here"
        elif self.l2_measurable is False:
            text += "; L2 makes no measurable difference here (rate 0 cannot be told apart)"
        elif self.l2_measurable and chosen.error < self.against_zero.other.error:
            text += "; L2 helps: rate 0 is measurably worse"
        elif self.l2_measurable:
            text += "; rate 0 is measurably better than the chosen entry"
        return text

    @property
    def fell_back(self) -> bool:
        return self.choice.rule != self.rule_asked

    def headline(self) -> dict:
        """best.json's decision figures (rounded by the writer)."""
        low, high = self.test_interval
        against = self.against_zero
        return {
            "rule": self.choice.rule,
            "chosen_entry": self.chosen.name,
            "cv_error_mean": self.chosen.error,
            "cv_error_se": self.chosen.se,
            "n_indistinguishable": len(self.tied),
            "indistinguishable": ",".join(self.tied),
            "p_vs_rate_0": against.p_holm if against is not None else None,
            "chosen_test_error": self.answer_error,
            "test_error_ci_low": low,
            "test_error_ci_high": high,
            "verdict": self.verdict(),
        }

    def markdown(self) -> list[str]:
        chosen, best = self.chosen, self.choice.best
        low, high = self.test_interval
        lines = [
            "## Decision",
            "",
            f"Rule **{self.rule_asked}**: "
            + (
                f"the lowest {self.figure}."
                if self.rule_asked == "min"
                else "the most regularized entry within one standard error of the lowest "
                "(ESL §7.10; layer by layer: every layer's rate at least as large)."
            ),
        ]
        if self.fell_back:
            lines.append(f"It falls back to `min`: {self.choice.note}.")
        if self.folds:
            spread = (
                f"standard error over {self.folds} stratified folds of the {self.n_rows} "
                f"training and validation rows pooled"
            )
        else:
            spread = (
                f"binomial standard error over {self.n_rows} validation rows; one validation "
                f"sample is {1 / self.n_rows:.4f}"
            )
        lines += [
            "",
            f"**Chosen: {chosen.name}**, {self.figure} {chosen.error:.3f} ± {chosen.se:.3f} "
            f"({spread}).",
        ]
        if chosen is not best:
            lines.append(
                f"The lowest is {best.name} ({best.error:.3f} ± {best.se:.3f}); one SE above it "
                f"is {self.choice.threshold:.3f}."
            )
        if self.refit is not None:
            lines.append(
                f"**Refit** on all {self.refit['train_rows']} training and validation rows: "
                f"test error **{self.answer_error:.3f}**, 95% interval [{low:.3f}, {high:.3f}] "
                f"(Wilson, {self.refit['test_rows']} test rows). This is the lab's answer; the "
                f"test split was used once, by the refit, after the folds chose."
            )
        else:
            lines.append(
                f"Its test error is {self.test_error:.3f}, 95% interval [{low:.3f}, {high:.3f}] "
                f"(Wilson, {self.test_rows} test rows); reported, not used to choose."
            )
        lines += [
            "",
            self.verdict()[0].upper() + self.verdict()[1:] + ".",
            "",
        ]
        if not self.comparisons:
            return lines
        lines += [
            f"Against every other candidate on the same {self.n_rows} held-out rows: rows "
            f"only one of the two gets wrong, the exact McNemar p-value, Holm's adjustment over "
            f"the {len(self.comparisons)} comparisons, and a paired bootstrap 95% interval of "
            f"the error difference (other - chosen).",
            "",
            f"| entry | {self.figure} ± SE | only chosen wrong | only other wrong | McNemar p | "
            "Holm p | difference 95% | told apart |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in self.comparisons:
            t = c.test
            lines.append(
                f"| {c.other.name} | {c.other.error:.3f} ± {c.other.se:.3f} | {t.only_a_wrong} "
                f"| {t.only_b_wrong} | {t.p_value:.3g} | {c.p_holm:.3g} | "
                f"[{t.diff_low:+.3f}, {t.diff_high:+.3f}] | {'yes' if c.apart else 'no'} |"
            )
        return [*lines, ""]


def candidates_of(
    entries: Sequence[EntrySpec], table: pd.DataFrame, held_out: HeldOut, n_rows: int
) -> list[Candidate]:
    """The entries the decision chooses among, lowest error first: the mean CV error with
    folds, else the validation error (the base seed's, the model the predictions come from);
    ties by cross-entropy, then name."""
    if "cv_error_mean" in table.columns:
        rows = table[table["cv_error_mean"].notna() & table["entry"].map(held_out.has)]
        rows = rows.sort_values(["cv_error_mean", "val_cross_entropy", "entry"], kind="stable")
        by_name = {e.name: e for e in entries}
        return [
            Candidate(row.entry, float(row.cv_error_mean), float(row.cv_error_se),
                      _rates(by_name[row.entry]))
            for row in rows.itertuples()
        ]  # fmt: skip
    by_name = {e.name: e for e in entries}
    rows = table[table["entry"].map(lambda n: n in by_name and not by_name[n].uses_pool)]
    rows = rows[rows["val_error"].notna() & rows["entry"].map(held_out.has)]
    rows = rows.sort_values(["val_error", "val_cross_entropy", "entry"], kind="stable")
    found = []
    for row in rows.itertuples():
        error = float(row.val_error)
        found.append(
            Candidate(row.entry, error, binomial_se(error, n_rows), _rates(by_name[row.entry]))
        )
    return found


def _rates(entry: EntrySpec) -> tuple[float, ...] | None:
    """The rates the one-SE rule orders by; None for weight decay (another axis)."""
    return tuple(r for _, r in entry.layer_rates) if not entry.weight_decay else None


def decide(
    entries: Sequence[EntrySpec],
    table: pd.DataFrame,
    held_out: HeldOut,
    *,
    rule: str,
    seed: int,
    test_rows: int,
    folds: int | None = None,
    refit: dict | None = None,
) -> Decision | None:
    """The decision over the sweep's candidates (None: no candidate, e.g. all diverged)."""
    n_rows = len(held_out.labels)
    candidates = candidates_of(entries, table, held_out, n_rows)
    if not candidates:
        return None
    choice = choose(candidates, rule)
    others = [c for c in candidates if c is not choice.chosen]
    rows = bootstrap_rows(n_rows, seed)
    chosen_wrong = held_out.wrong(choice.chosen.name)
    tests = [paired_test(chosen_wrong, held_out.wrong(c.name), rows) for c in others]
    adjusted = holm([t.p_value for t in tests]) if tests else []
    comparisons = tuple(
        Comparison(c, t, p) for c, t, p in zip(others, tests, adjusted, strict=True)
    )
    zero = next((c.name for c in candidates if c.rates is not None and not any(c.rates)), None)
    test_error = float(table.set_index("entry").at[choice.chosen.name, "test_error"])
    if refit is not None and refit.get("entry") != choice.chosen.name:
        refit = None  # made for another choice (an older refit/): not this decision's answer
    return Decision(choice, rule, n_rows, comparisons, zero, test_error, test_rows, folds, refit)

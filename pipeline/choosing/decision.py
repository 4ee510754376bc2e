"""The decision: which entry the rule picks, with its standard error, and which entries the
held-out rows cannot tell apart from it.

Without folds the figure is each entry's validation error (its base seed's model) and its
Wilson standard error over the validation rows; with `choose.folds` it is the mean CV error
and its standard error over the folds, never below the Wilson SE on the pooled rows
(statistics.choosing_se). A regression chooses on the MSE (the mean per-row squared error in
the target's units: `val_mse`, with folds `cv_mse_mean`), its SE that of the held-out rows'
squared errors (with folds never below it: statistics.mean_loss_se), and shows the RMSE, its
root, beside it; its test figure is the RMSE with a 95% percentile bootstrap interval over the
test rows, which evaluate computed (the test rows stay there). The names come from the task
(core/task.py). The held-out rows are the pooled folds (each row predicted by the
fold model that did not train on it). The chosen entry is compared with every
other candidate on the same rows by the judge (judge.py: its paired test, its correction, a
paired bootstrap of the difference). "L2 makes no measurable difference here" is said when the
chosen entry cannot be told from rate 0 that way. Whether two entries are told apart
anywhere (the table, the bracket of next rates, refine) is read from `comparisons`: one
family, one correction. Candidates are the entries trained on data's
training split (not a pool prefix: another training set is not a choice of L2) that did not
diverge and have held-out predictions.

`refit` makes the decision (it runs first) and writes it with `to_json`; `report` reads it
back with `from_json` and renders it (pipeline/reporting/decision.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import pandas as pd

from pipeline.choosing.judge import Judge
from pipeline.choosing.points import FROM_START, start_label
from pipeline.choosing.statistics import (
    Candidate,
    Choice,
    PairedTest,
    choose,
    choosing_se,
    error_interval,
    mean_loss_se,
)
from pipeline.config.entries import EntrySpec
from pipeline.core.task import CLASSIFICATION, Task, task_named

WILSON = "Wilson"
BOOTSTRAP = "percentile bootstrap"
# Written only for a regression: a classification's decision.json stays as it was.
REGRESSION_FIELDS = ("task", "test_interval")


@dataclass(frozen=True)
class Comparison:
    """The chosen entry against one other candidate on the same held-out rows."""

    other: Candidate
    test: PairedTest  # the chosen entry as A, the other as B
    p_adjusted: float  # over every comparison of the decision (the judge's correction)
    apart: bool  # p_adjusted < the judge's alpha


@dataclass(frozen=True)
class Refit:
    """refit/refit.json: the chosen entry trained on every pooled row, scored on test."""

    train_rows: int
    test_rows: int
    test_value: float
    test_ci_low: float
    test_ci_high: float


@dataclass(frozen=True)
class Decision:
    choice: Choice
    rule_asked: str
    figure: str  # the column the candidates are ranked on: val_error, or cv_error_mean, ...
    test_figure: str  # the chosen entry's figure on the test split (reported, not chosen on)
    n_rows: int  # held-out rows every comparison is on
    test: str  # the judge's paired test, its correction and level
    correction: str
    alpha: float
    comparisons: tuple[Comparison, ...]  # chosen vs every other candidate, ranked order
    zero: str | None  # the rate-0 candidate (no penalty, no decay), if trained
    test_value: float  # the chosen entry's own test figure
    test_rows: int
    test_ci_low: float  # its 95% interval (`test_interval`: how it is computed)
    test_ci_high: float
    folds: int | None = None
    refit: Refit | None = None  # with folds: the lab's answer
    task: str = CLASSIFICATION
    test_interval: str = WILSON  # or BOOTSTRAP: a regression's test RMSE

    @property
    def is_regression(self) -> bool:
        return task_named(self.task).is_regression

    def rmse(self, candidate: Candidate) -> float | None:
        """A regression candidate's RMSE (target units), the root of the MSE it was chosen on,
        which the pages show beside it; None for classification."""
        return math.sqrt(candidate.value) if self.is_regression else None

    @property
    def chosen(self) -> Candidate:
        return self.choice.chosen

    @property
    def fell_back(self) -> bool:
        return self.choice.rule != self.rule_asked

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
    def l2_unmeasurable(self) -> bool:
        """Whether the verdict is "L2 makes no measurable difference here": rate 0 cannot be
        told apart from the chosen entry. No new rate can change that answer, so nothing is
        bracketed (next_rates.bracket, refine)."""
        return self.l2_measurable is False

    def comparison_with(self, name: str) -> Comparison | None:
        """The table's row of the chosen entry against `name` (None: not a candidate, or
        the chosen entry itself)."""
        return next((c for c in self.comparisons if c.other.name == name), None)

    @property
    def answer(self) -> tuple[float, float, float]:
        """The lab's answer and its 95% interval: the refit's test figure, else the chosen
        entry's own."""
        if self.refit is not None:
            return self.refit.test_value, self.refit.test_ci_low, self.refit.test_ci_high
        return self.test_value, self.test_ci_low, self.test_ci_high

    def with_refit(self, refit: Refit) -> Decision:
        return replace(self, refit=refit)

    def to_json(self) -> dict:
        """The decision as JSON (full precision: the renderer rounds)."""
        payload = asdict(self)
        if not self.is_regression:
            for name in REGRESSION_FIELDS:
                del payload[name]
        # A candidate's fine-tuning fields only when set: other sweeps' files stay as they were.
        for candidate in (payload["choice"]["chosen"], payload["choice"]["best"],
                          *(c["other"] for c in payload["comparisons"])):  # fmt: skip
            for name, default in (("start", ""), ("mixes", False)):
                if candidate[name] == default:
                    del candidate[name]
        return payload

    @classmethod
    def from_json(cls, payload: dict) -> Decision:
        def candidate(c: dict) -> Candidate:
            rates = None if c["rates"] is None else tuple(c["rates"])
            start, mixes = c.get("start", ""), c.get("mixes", False)
            return Candidate(c["name"], c["value"], c["se"], rates, start, mixes)

        fields = dict(payload["choice"])
        fields["chosen"], fields["best"] = candidate(fields["chosen"]), candidate(fields["best"])
        fields["unordered"] = tuple(fields["unordered"])
        choice = Choice(**fields)
        comparisons = tuple(
            Comparison(candidate(c["other"]), PairedTest(**c["test"]), c["p_adjusted"], c["apart"])
            for c in payload["comparisons"]
        )
        refit = Refit(**payload["refit"]) if payload["refit"] is not None else None
        plain = {k: v for k, v in payload.items() if k not in {"choice", "comparisons", "refit"}}
        return cls(choice=choice, comparisons=comparisons, refit=refit, **plain)


def candidates_of(
    entries: Sequence[EntrySpec],
    table: pd.DataFrame,
    judge: Judge,
    figure: str,
    task: Task,
) -> list[Candidate]:
    """The entries the decision chooses among, lowest `figure` first, ties by the task's
    tie-break (cross-entropy, MAE), then name: the mean CV figure with folds, else the
    validation figure of the base seed (the model the predictions come from); the SE is
    statistics.choosing_se (classification) or mean_loss_se (regression) on the judge's rows."""
    by_name = {e.name: e for e in entries}
    rows = table[table[figure].notna() & table["entry"].map(judge.has)]
    folds = figure == task.cv_mean
    if not folds:  # a fold model never trains on a pool prefix
        rows = rows[rows["entry"].map(lambda n: n in by_name and not by_name[n].uses_pool)]
    rows = rows.sort_values([figure, task.tiebreak, "entry"], kind="stable")
    found = []
    for row in rows.to_dict("records"):
        value = float(row[figure])
        fold_se = float(row[task.cv_se]) if folds else None
        if task.is_regression:
            se = mean_loss_se(judge.losses[row["entry"]], fold_se)
        else:
            se = choosing_se(value, judge.n_rows, fold_se)
        found.append(Candidate(row["entry"], value, se, *_order(by_name[row["entry"]])))
    return found


def _order(entry: EntrySpec) -> tuple[tuple[float, ...] | None, str, bool]:
    """What the one-SE rule orders by: the `l2` rates then the `l2_sp` rates (None for weight
    decay, another axis, and for an entry that mixes `l2` and `l2_sp`), where the entry
    starts, and whether it mixes."""
    mixes = entry.tuning.holds_close and any(entry.rates)
    rates = None if entry.weight_decay or mixes else (*entry.rates, *entry.sp_rates)
    return rates, start_label(entry), mixes


def _unpenalized(candidates: Sequence[Candidate]) -> str | None:
    """The rate-0 candidate: no `l2`, no `l2_sp`, no decay; fine-tuning, preferably the one
    that starts from the start model with every layer trained."""
    free = [c for c in candidates if c.rates is not None and not any(c.rates)]
    preferred = [c for c in free if c.start == FROM_START]
    found = preferred or free
    return found[0].name if found else None


def decide(
    entries: Sequence[EntrySpec],
    table: pd.DataFrame,
    judge: Judge,
    *,
    rule: str,
    seed: int,
    test_rows: int,
    folds: int | None = None,
    task: Task,
    test_intervals: Mapping[str, Sequence[float]] | None = None,
) -> Decision | None:
    """The decision over the sweep's candidates (None: no candidate, e.g. all diverged).
    `test_intervals`: entry -> the 95% interval of its test figure, which a regression's
    decision takes from evaluate (classification's is Wilson's, from `test_rows`)."""
    figure = task.cv_mean if folds else task.choosing_figure
    candidates = candidates_of(entries, table, judge, figure, task)
    if not candidates:
        return None
    choice = choose(candidates, rule)
    others = [c for c in candidates if c is not choice.chosen]
    judged = judge.against(choice.chosen.name, [c.name for c in others], seed)
    comparisons = tuple(
        Comparison(c, test, p, p < judge.alpha)
        for c, (test, p) in zip(others, judged, strict=True)
    )
    zero = _unpenalized(candidates)
    test_value = float(table.set_index("entry").at[choice.chosen.name, task.test_figure])
    low, high = _test_interval(task, choice.chosen.name, test_value, test_rows, test_intervals)
    return Decision(
        choice=choice,
        rule_asked=rule,
        figure=figure,
        test_figure=task.test_figure,
        n_rows=judge.n_rows,
        test=judge.test,
        correction=judge.correction,
        alpha=judge.alpha,
        comparisons=comparisons,
        zero=zero,
        test_value=test_value,
        test_rows=test_rows,
        test_ci_low=low,
        test_ci_high=high,
        folds=folds,
        task=task.name,
        test_interval=BOOTSTRAP if task.is_regression else WILSON,
    )


def _test_interval(task: Task, chosen: str, value: float, test_rows: int, intervals):
    if not task.is_regression:
        return error_interval(round(value * test_rows), test_rows)
    if not intervals or chosen not in intervals:
        raise ValueError(f"no test interval for {chosen!r}; run `dvc repro evaluate`")
    low, high = intervals[chosen]
    return float(low), float(high)

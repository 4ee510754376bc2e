"""The statistics behind a choice you can trust: standard errors, intervals, paired tests.

Pure functions of counts and per-row outcomes; scipy does the exact binomial arithmetic and
the t distribution. Classification's errors are shares of wrongly classified rows ("wrong"
arrays hold one bool per held-out row); regression's per-row losses are squared errors in the
target's units, whose mean is the MSE and whose root is the RMSE. Either way the same rows in
the same order for every model compared (a paired design). judge.py applies them to the
entries of a sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# The fold SE, the rows of a bootstrap and the test RMSE's interval live in core (evaluate
# computes them without the choosing concern), with the level of every test and interval;
# re-exported so every choosing statistic is found here.
from pipeline.core.spread import (  # noqa: F401
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    bootstrap_rows,
    mean_and_se,
    rmse_interval,
)

# The normal quantile of the 95% intervals: 1.96.
Z = float(stats.norm.ppf(1 - ALPHA / 2))


def binomial_se(error: float, n: int) -> float:
    """Standard error of an error rate measured on `n` independent rows: sqrt(p(1-p)/n).
    It is 0 at 0 or n errors, so the one-SE rule uses `choosing_se`."""
    return math.sqrt(error * (1.0 - error) / n)


def wilson_se(error: float, n: int) -> float:
    """Half the width of the 95% Wilson interval of `error` on `n` rows, over z:
    sqrt(n p (1 - p) + z²/4) / (n + z²). At 0 or n errors it is z / (2 (n + z²)), about half
    of one row's share, not 0; between, it is within a few percent of `binomial_se`."""
    return math.sqrt(n * error * (1.0 - error) + Z * Z / 4) / (n + Z * Z)


def choosing_se(error: float, n: int, fold_se: float | None = None) -> float:
    """The standard error of a choosing figure, the one the one-SE rule adds to the lowest:
    the Wilson SE of the error on the `n` held-out rows, and with folds the larger of it and
    the SE over folds (`fold_se`), which is 0 when every fold scores alike (docs/decision.md).
    """
    floor = wilson_se(error, n)
    return floor if fold_se is None else max(fold_se, floor)


def loss_se(losses: np.ndarray) -> float:
    """Standard error of a mean per-row loss (an MSE from squared errors): std(ddof=1)/sqrt(n)."""
    losses = np.asarray(losses, dtype=np.float64)
    if len(losses) < 2:
        raise ValueError(f"a standard error needs at least 2 rows, got {len(losses)}")
    return float(losses.std(ddof=1) / math.sqrt(len(losses)))


def mean_loss_se(losses: np.ndarray, fold_se: float | None = None) -> float:
    """The standard error of a regression's choosing figure (an MSE): `loss_se` of the
    held-out rows' squared errors, and with folds the larger of it and the SE over folds,
    as `choosing_se` takes the larger of the Wilson SE and the folds'."""
    floor = loss_se(losses)
    return floor if fold_se is None else max(fold_se, floor)


def error_interval(wrong: int, n: int, method: str = "wilson") -> tuple[float, float]:
    """95% confidence interval of an error rate from `wrong` of `n` rows: `wilson` (score
    interval) or `exact` (Clopper-Pearson)."""
    found = stats.binomtest(wrong, n).proportion_ci(confidence_level=1 - ALPHA, method=method)
    return float(found.low), float(found.high)


@dataclass(frozen=True)
class PairedTest:
    """Model A against model B on the same rows."""

    only_a_worse: int  # rows where A's loss is above B's (0/1 loss: A wrong, B right)
    only_b_worse: int
    p_value: float  # the judge's test, two-sided
    # 95% paired-bootstrap interval of error(B) - error(A) (regression: RMSE(B) - RMSE(A))
    diff_low: float
    diff_high: float


def mcnemar_exact(a_wrong: np.ndarray, b_wrong: np.ndarray) -> tuple[int, int, float]:
    """(only A wrong, only B wrong, two-sided exact McNemar p): under "equally good" each
    discordant row is a fair coin, so the p-value is a binomial test of one count against
    all discordant rows at 1/2. No discordant row: p = 1."""
    a_wrong, b_wrong = np.asarray(a_wrong, bool), np.asarray(b_wrong, bool)
    if a_wrong.shape != b_wrong.shape:
        raise ValueError(f"paired outcomes differ in length: {a_wrong.shape} vs {b_wrong.shape}")
    only_a = int(np.sum(a_wrong & ~b_wrong))
    only_b = int(np.sum(b_wrong & ~a_wrong))
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_t(a_losses: np.ndarray, b_losses: np.ndarray) -> tuple[int, int, float]:
    """(rows where A's loss is above B's, rows where B's is, two-sided p of the t-test on the
    per-row differences). On squared errors this is the Diebold-Mariano test (independent
    rows: no autocorrelation correction). Every difference 0: p = 1."""
    a, b = _paired(a_losses, b_losses)
    only_a, only_b = int(np.sum(a > b)), int(np.sum(b > a))
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(stats.ttest_rel(a, b).pvalue)


# Random sign patterns of a sign-flip test: its smallest two-sided p is 2 / (SIGN_FLIPS + 1),
# 2e-4, so Holm over tens of comparisons can still reject at ALPHA.
SIGN_FLIPS = 9_999
# Sign patterns drawn at a time: memory of SIGN_FLIP_BATCH x rows, whatever the resamples.
SIGN_FLIP_BATCH = 1_000


def sign_flip(
    a_losses: np.ndarray, b_losses: np.ndarray, seed: int = 0, resamples: int = SIGN_FLIPS
) -> tuple[int, int, float]:
    """(rows where A's loss is above B's, rows where B's is, two-sided p of the sign-flip
    permutation test of the mean per-row difference; scipy.stats.permutation_test, exact when
    2**n <= resamples). Under "A and B are interchangeable on every row" each difference's
    sign is a fair coin, whatever the differences' tails (benchmarks/paired_calibration.py
    measured the t-test's rate off ALPHA with t(3) errors, this test's at it). `seed` fixes
    the sign patterns, so a pair's p-value is the same wherever it is asked. Every
    difference 0: p = 1."""
    a, b = _paired(a_losses, b_losses)
    only_a, only_b = int(np.sum(a > b)), int(np.sum(b > a))
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    found = stats.permutation_test(
        (a - b,), _mean, vectorized=True, permutation_type="samples", n_resamples=resamples,
        batch=SIGN_FLIP_BATCH, random_state=np.random.default_rng(seed),
    )  # fmt: skip
    return only_a, only_b, float(found.pvalue)


def _mean(x: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(x, axis=axis)


def _paired(a_losses, b_losses) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a_losses, np.float64), np.asarray(b_losses, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in length: {a.shape} vs {b.shape}")
    return a, b


def paired_bootstrap(a_wrong: np.ndarray, b_wrong: np.ndarray, rows: np.ndarray):
    """95% percentile interval of error(B) - error(A) over the bootstrap samples `rows`
    (from `bootstrap_rows`), each resampling the same rows for both models."""
    diff = np.asarray(b_wrong, np.float64) - np.asarray(a_wrong, np.float64)
    means = diff[rows].mean(axis=1)
    low, high = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)


def paired_rmse_bootstrap(a_squared: np.ndarray, b_squared: np.ndarray, rows: np.ndarray):
    """95% percentile interval of RMSE(B) - RMSE(A) over the bootstrap samples `rows`, each
    resampling the same rows for both models (per-row squared errors `a_squared`, ...)."""
    a, b = _paired(a_squared, b_squared)
    diff = np.sqrt(b[rows].mean(axis=1)) - np.sqrt(a[rows].mean(axis=1))
    low, high = np.quantile(diff, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest of m is
    multiplied by m - i + 1, then made non-decreasing and capped at 1. Rejecting where the
    adjusted p < ALPHA keeps the chance of any false "better" at most ALPHA."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(v) for v in adjusted]


@dataclass(frozen=True)
class Candidate:
    """An entry on the choosing table: its figure (`value`: the mean over folds, or the
    validation figure), that figure's standard error, and its L2 rate per layer (None: not
    on the rate order, e.g. weight decay). Fine-tuning: `rates` are its `l2` rates then its
    `l2_sp` rates, `start` says where it starts (entries order only within one start), and
    `mixes` marks an entry with both `l2` and `l2_sp` (rates None: no order against either)."""

    name: str
    value: float
    se: float
    rates: tuple[float, ...] | None
    start: str = ""  # "" without a start model: the sweep's only start
    mixes: bool = False


@dataclass(frozen=True)
class Choice:
    chosen: Candidate
    best: Candidate  # the lowest value
    rule: str  # the rule applied: min, or one_se
    threshold: float  # best.value + best.se under one_se; best.value under min
    # Why one_se fell back to min: "no_rates" (`unordered` within one SE have no L2 rate),
    # "mixed" (`unordered` combine l2 and l2_sp), "starts" (`unordered` start elsewhere than
    # `top`) or "not_ordered" (`top`, the largest rates, is not at least `unordered` on every
    # layer).
    fallback: str = ""
    top: str = ""
    unordered: tuple[str, ...] = ()


# Figures are written to 5 significant digits: a value this close to the threshold is on it.
ROUNDING = 1e-9


def _at_least(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True))


def choose(candidates: Sequence[Candidate], rule: str) -> Choice:
    """The entry `rule` picks. Candidates come ranked (lowest value first, ties broken).

    `min`: the first. `one_se` (ESL §7.10): the most regularized candidate whose value is
    within one standard error of the lowest. "More regularized" is layer by layer: A is at
    least as regularized as B when every layer's rate of A is >= B's, so [0.01, 0.01, 0] is
    more regularized than [0.01, 0, 0] but neither of [0.01, 0, 0] and [0, 0.01, 0] is. When
    the candidates within one SE are not all ordered that way (or one has no rates), there is
    no "most regularized" and the rule falls back to `min`, saying why. Fine-tuning: `l2_sp`
    is another rate (a stronger pull toward the start is more regularized), so an `l2` entry
    and an `l2_sp` entry are not ordered, an entry that mixes both is ordered against none,
    and entries that start differently (scratch, other frozen layers) are not compared."""
    best = candidates[0]
    if rule == "min":
        return Choice(best, best, "min", best.value)
    threshold = best.value + best.se
    within = [c for c in candidates if c.value <= threshold + ROUNDING]
    mixed = tuple(c.name for c in within if c.mixes)
    if mixed:
        return Choice(best, best, "min", threshold, "mixed", unordered=mixed)
    unordered = tuple(c.name for c in within if c.rates is None)
    if unordered:
        return Choice(best, best, "min", threshold, "no_rates", unordered=unordered)
    elsewhere = tuple(c.name for c in within if c.start != best.start)
    if elsewhere:
        return Choice(best, best, "min", threshold, "starts", best.name, elsewhere)
    top = max(within, key=lambda c: (sum(c.rates), -candidates.index(c)))
    if not all(_at_least(top.rates, c.rates) for c in within):
        others = tuple(c.name for c in within if not _at_least(top.rates, c.rates))
        return Choice(best, best, "min", threshold, "not_ordered", top.name, others)
    return Choice(top, best, "one_se", threshold)

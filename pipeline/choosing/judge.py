"""When two entries cannot be told apart: one paired test on the same rows, one correction.

Every comparison the lab makes asks this object, built once from evaluate's per-row outcomes:
the decision (`against`: the chosen entry against every other candidate, adjusted together),
whose table the bracket of next rates and refine's stopping rule then read, and the layer
verdict. It
holds one loss per row and entry, the same rows in the same order for every entry (a paired
design). For classification the loss is 0/1 (wrong or right) and the test is the exact
McNemar test; for regression the loss is the squared error in the target's units and the test
is the sign-flip permutation test of the per-row differences, with a paired bootstrap interval
of the RMSE difference. The t-test on the differences (Diebold-Mariano) is kept beside it.
benchmarks/paired_calibration.py measured both where the truth is known
(paired_calibration_results.json): with exchangeable heavy-tailed (t(3)) errors the t-test's
type-I error fell below the binomial band at the lab's validation sizes, where the sign-flip
test, exact there, stayed in it; where two predictors' errors differ in shape at equal MSE,
neither test held the band, and they missed it alike. Several comparisons against one entry
are adjusted by Holm's step-down method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.choosing.statistics import (
    ALPHA,
    PairedTest,
    bootstrap_rows,
    holm,
    loss_se,
    mcnemar_exact,
    paired_bootstrap,
    paired_rmse_bootstrap,
    paired_t,
    sign_flip,
)

MCNEMAR = "exact McNemar"
DIEBOLD_MARIANO = "paired t-test (Diebold-Mariano)"
SIGN_FLIP = "sign-flip permutation"
# Each test: (the p-value's function of two entries' per-row losses, the bootstrap interval's
# function of them and the resampled rows): the interval is of the task's figure.
TESTS = {
    MCNEMAR: (lambda a, b: mcnemar_exact(a > 0, b > 0), paired_bootstrap),
    DIEBOLD_MARIANO: (paired_t, paired_rmse_bootstrap),
    SIGN_FLIP: (sign_flip, paired_rmse_bootstrap),
}
# The regression judge's test, chosen by benchmarks/paired_calibration_results.json.
REGRESSION_TEST = SIGN_FLIP


@dataclass(frozen=True)
class Judge:
    """Per-row losses of each entry on the same held-out rows, and the test that compares
    two of them (`test`) with its correction for many comparisons (`correction`)."""

    losses: Mapping[str, np.ndarray]  # entry -> one loss per row
    test: str = MCNEMAR  # a key of TESTS
    correction: str = "Holm"
    alpha: float = ALPHA

    @classmethod
    def of_classes(cls, labels: np.ndarray, predicted: Mapping[str, np.ndarray]) -> Judge:
        """0/1 losses from each entry's predicted class per row against the labels."""
        return cls({entry: (p != labels).astype(np.float64) for entry, p in predicted.items()})

    @classmethod
    def of_values(cls, targets: np.ndarray, predicted: Mapping[str, np.ndarray]) -> Judge:
        """Squared errors from each entry's predicted value per row against the targets
        (both in the target's units)."""
        targets = np.asarray(targets, np.float64)
        return cls(
            {entry: (np.asarray(p, np.float64) - targets) ** 2 for entry, p in predicted.items()},
            test=REGRESSION_TEST,
        )

    @classmethod
    def of_held_out(cls, labels: np.ndarray, predicted: Mapping[str, np.ndarray]) -> Judge:
        """The judge of evaluate's held-out file: float targets are a regression's values,
        integer ones classes."""
        if np.issubdtype(np.asarray(labels).dtype, np.floating):
            return cls.of_values(labels, predicted)
        return cls.of_classes(labels, predicted)

    def __post_init__(self):
        if self.test not in TESTS:
            raise ValueError(f"unknown paired test {self.test!r}; known: {', '.join(TESTS)}")

    def se(self, entry: str) -> float:
        """The standard error of `entry`'s mean per-row loss on these rows (regression)."""
        return loss_se(self.losses[entry])

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.losses.values()))) if self.losses else 0

    def has(self, *entries: str) -> bool:
        return all(entry in self.losses for entry in entries)

    def p_value(self, a: str, b: str) -> float:
        """The two-sided p-value of "a and b are equally good" on the same rows."""
        return TESTS[self.test][0](self.losses[a], self.losses[b])[2]

    def apart(self, a: str, b: str) -> bool:
        """Whether one comparison on its own tells `a` and `b` apart (no correction)."""
        return self.p_value(a, b) < self.alpha

    def compare(self, a: str, b: str, rows: np.ndarray) -> PairedTest:
        """`a` against `b`: the test and a paired bootstrap of figure(b) - figure(a) over the
        resamples `rows` (statistics.bootstrap_rows): the error, or the RMSE."""
        p_value, interval = TESTS[self.test]
        only_a, only_b, p = p_value(self.losses[a], self.losses[b])
        low, high = interval(self.losses[a], self.losses[b], rows)
        return PairedTest(only_a, only_b, p, low, high)

    def against(
        self, chosen: str, others: Sequence[str], seed: int
    ) -> list[tuple[PairedTest, float]]:
        """`chosen` against each of `others`, with the p-values adjusted over all of them."""
        rows = bootstrap_rows(self.n_rows, seed)
        tests = [self.compare(chosen, other, rows) for other in others]
        adjusted = self.adjust([t.p_value for t in tests])
        return list(zip(tests, adjusted, strict=True))

    def adjust(self, p_values: Sequence[float]) -> list[float]:
        return holm(p_values) if p_values else []

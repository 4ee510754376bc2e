"""When two entries cannot be told apart: one paired test on the same rows, one correction.

Every comparison the lab makes asks this object, built once from evaluate's per-row outcomes:
the decision (`against`: the chosen entry against every other candidate, adjusted together),
whose table the bracket of next rates and refine's stopping rule then read, and the layer
verdict. It
holds one loss per row and entry, the same rows in the same order for every entry (a paired
design). For classification the loss is 0/1 (wrong or right) and the test is the exact
McNemar test; several comparisons against one entry are adjusted by Holm's step-down method.
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
    mcnemar_exact,
    paired_bootstrap,
)


@dataclass(frozen=True)
class Judge:
    """Per-row losses of each entry on the same held-out rows, and the test that compares
    two of them (`test`) with its correction for many comparisons (`correction`)."""

    losses: Mapping[str, np.ndarray]  # entry -> one loss per row
    test: str = "exact McNemar"
    correction: str = "Holm"
    alpha: float = ALPHA

    @classmethod
    def of_classes(cls, labels: np.ndarray, predicted: Mapping[str, np.ndarray]) -> Judge:
        """0/1 losses from each entry's predicted class per row against the labels."""
        return cls({entry: (p != labels).astype(np.float64) for entry, p in predicted.items()})

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.losses.values()))) if self.losses else 0

    def has(self, *entries: str) -> bool:
        return all(entry in self.losses for entry in entries)

    def p_value(self, a: str, b: str) -> float:
        """The two-sided p-value of "a and b are equally good" on the same rows."""
        return mcnemar_exact(self.losses[a] > 0, self.losses[b] > 0)[2]

    def apart(self, a: str, b: str) -> bool:
        """Whether one comparison on its own tells `a` and `b` apart (no correction)."""
        return self.p_value(a, b) < self.alpha

    def compare(self, a: str, b: str, rows: np.ndarray) -> PairedTest:
        """`a` against `b`: the test and a paired bootstrap of loss(b) - loss(a) over the
        resamples `rows` (statistics.bootstrap_rows)."""
        only_a, only_b, p = mcnemar_exact(self.losses[a] > 0, self.losses[b] > 0)
        low, high = paired_bootstrap(self.losses[a], self.losses[b], rows)
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

"""Which model "rate 0" is, in words: in a sweep without a start model the unregularized
network; in a fine-tuning sweep the start model trained without a penalty, which differs from
a from-scratch entry in its start as well (choosing.decision._unpenalized)."""

from __future__ import annotations

from pipeline.choosing import Decision
from pipeline.choosing.points import FROM_START


def rate_zero_words(decision: Decision) -> str:
    """`rate 0`; in a fine-tuning sweep, which model that is (the start, trained without a
    penalty), since a from-scratch entry without one is another model."""
    against = decision.against_zero
    if against is None or against.other.start != FROM_START:
        return "rate 0"
    return f"rate 0 ({against.other.name}: fine-tuned without a penalty)"


def other_start_words(decision: Decision) -> str:
    """Said when the chosen entry and rate 0 start differently: their difference is the
    start's as much as L2's."""
    against, chosen = decision.against_zero, decision.chosen
    if against is None or chosen.name == decision.zero or chosen.start == against.other.start:
        return ""
    starts = chosen.start or "scratch"
    return (
        f"; {chosen.name} starts from {starts}, rate 0 from {against.other.start or 'scratch'}:"
        f" their difference is the start's as much as the penalty's"
    )

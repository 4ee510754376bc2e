"""Choosing L2 from a sweep: which layer needs it, whether more data would do, what to try next.

Works on the report's sweep table (one row per entry, ranked on validation) and the entries'
specs; imports no TensorFlow. `points` places entries on the rate axis and says when two
cannot be told apart; `layers`, `data_size` and `next_rates` answer one question each;
`statistics` holds the standard errors, intervals and paired tests; `decision` applies the
rule (`choose.rule`) and says which entries the validation rows cannot tell apart;
`section` writes them into `choosing.md`.
"""

from pipeline.choosing.decision import RULES, Decision, decide
from pipeline.choosing.next_rates import next_rates
from pipeline.choosing.points import ALL, HeldOut, Point, indistinguishable, place
from pipeline.choosing.section import analyse

__all__ = [
    "ALL",
    "RULES",
    "Decision",
    "HeldOut",
    "Point",
    "analyse",
    "decide",
    "indistinguishable",
    "next_rates",
    "place",
]

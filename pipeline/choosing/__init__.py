"""Choosing L2 from a sweep: the decision, which layer needs it, whether more data would do,
what to try next. Every answer is data (frozen dataclasses); pipeline/reporting/ renders them.

Works on the report's sweep table (one row per entry, ranked on validation) and the entries'
specs; imports no TensorFlow and no Matplotlib. `judge` says when two entries cannot be told
apart (one paired test on the same rows, one correction); `statistics` holds the standard
errors, intervals and tests it uses; `points` places entries on the rate axis; `decision`
applies the rule (`choose.rule`); `layers`, `data_size` and `next_rates` answer one question
each; `analysis` gathers them for `choosing.md`.
"""

from pipeline.choosing.analysis import Analysis, analyse
from pipeline.choosing.decision import Decision, Refit, decide
from pipeline.choosing.judge import Judge
from pipeline.choosing.next_rates import next_rates
from pipeline.choosing.points import ALL, Point, place

__all__ = [
    "ALL",
    "Analysis",
    "Decision",
    "Judge",
    "Point",
    "Refit",
    "analyse",
    "decide",
    "next_rates",
    "place",
]

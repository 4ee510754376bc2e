"""Choosing L2 from a sweep: which layer needs it, whether more data would do, what to try next.

Works on the report's sweep table (one row per entry, ranked on validation) and the entries'
specs; imports no TensorFlow. `points` places entries on the rate axis and says when two
cannot be told apart; `layers`, `data_size` and `next_rates` answer one question each;
`section` writes them into `choosing.md`.
"""

from pipeline.choosing.next_rates import next_rates
from pipeline.choosing.points import ALL, Point, indistinguishable, place
from pipeline.choosing.section import analyse

__all__ = ["ALL", "Point", "analyse", "indistinguishable", "next_rates", "place"]

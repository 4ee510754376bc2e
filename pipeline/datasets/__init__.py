"""The data: every source read into arrays, split, corrupted on purpose, scaled and stored.

`sources`: digits, a CSV (`table`), an image folder or an `.npz` (`arrays`) as examples and
labels or a target (`examples`), one-line errors. `targets`: the task a target asks for
(`data.task`) and what a regression target must be. `prepared`: stratified splits (a
regression target's quantile bins), label noise, scaling of the features and of a regression
target, and the Parquet files `data/prepared/` holds. `subsets`: the nested training pool that
per-entry training-set sizes take prefixes of. `folds`: the training and validation rows
pooled and cut into stratified folds for cross-validation (`choose.folds`).
"""

from pipeline.datasets.folds import check_folds, write_cv_pool
from pipeline.datasets.sources import load_dataset
from pipeline.datasets.subsets import check_entries, nested_order, write_pool

__all__ = [
    "check_entries",
    "check_folds",
    "load_dataset",
    "nested_order",
    "write_cv_pool",
    "write_pool",
]

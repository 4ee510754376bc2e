"""The data: every source read into arrays, split, corrupted on purpose, scaled and stored.

`sources`: digits, a CSV, an image folder or an `.npz` as examples and labels. `arrays`:
reading those files, one-line errors. `prepared`: stratified splits, label noise, scaling,
and the Parquet files `data/prepared/` holds. `subsets`: the nested training pool that
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

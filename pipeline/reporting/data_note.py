"""The one sentence that says what the lab did to the training data on purpose.

Rows kept by `train_subset` and labels flipped by `label_noise` change every figure of the
report, so the report's header, choosing.md and the MLflow parent's description all say so.
"""

from __future__ import annotations

from pipeline.config.schema import DataConfig
from pipeline.core.contracts import PreparedMeta


def training_data_note(meta: PreparedMeta, data: DataConfig) -> str | None:
    """The sentence, or None when the training split is every training row, labels as given."""
    where = "data.digits." if data.source == "digits" else "data."
    kept, pool, flipped = meta.rows["train"], meta.pool_rows, meta.train_labels_flipped
    changes = []
    if pool and kept < pool:
        changes.append(f"{kept} of {pool} training rows kept ({where}train_subset)")
    if flipped:
        changes.append(
            f"{flipped} of {kept} training labels moved to another class ({where}label_noise)"
        )
    if not changes:
        return None
    return (
        f"Training data changed on purpose: {' and '.join(changes)}; validation and test data"
        f" are as given."
    )


def with_note(markdown: str, note: str | None) -> str:
    """`markdown` with `note` as the paragraph after its title line."""
    if note is None:
        return markdown
    title, _, rest = markdown.partition("\n\n")
    return f"{title}\n\n{note}\n\n{rest}"

"""The one sentence that says what was done to the data before training.

Rows with a missing value dropped from a CSV, rows kept by `train_subset` and labels flipped
by `label_noise` change every figure of the report, so the report's header, choosing.md
and (through reports/decision.json) the MLflow parent's description all say so. A regression
also says how its target was standardised for training (label noise has no meaning there and
is refused), since the losses and the penalty are on that scale while the figures are not.
"""

from __future__ import annotations

from pipeline.config.schema import DataConfig
from pipeline.core.contracts import PreparedMeta


def training_data_note(meta: PreparedMeta, data: DataConfig) -> str | None:
    """The sentence, or None when every row was used and every label is as given (a
    regression always has one: its target's scaling)."""
    changed = _changed(meta, data)
    if not meta.is_regression:
        return changed
    scaled = (
        f"The target was standardised for training with the training rows' mean "
        f"{meta.target_mean:.6g} and standard deviation {meta.target_std:.6g} (so one L2 rate "
        f"means the same whatever its units); the losses and the L2 penalty are on that scale, "
        f"every RMSE, MAE and MSE in the target's units."
    )
    return scaled if changed is None else f"{changed} {scaled}"


def _changed(meta: PreparedMeta, data: DataConfig) -> str | None:
    where = "data.digits." if data.source == "digits" else "data."
    kept, pool, flipped = meta.rows["train"], meta.pool_rows, meta.train_labels_flipped
    on_purpose = []
    if pool and kept < pool:
        on_purpose.append(f"{kept} of {pool} training rows kept ({where}train_subset)")
    if flipped:
        on_purpose.append(
            f"{flipped} of {kept} training labels moved to another class ({where}label_noise)"
        )
    dropped = meta.incomplete_rows_dropped
    missing = f"{dropped} of {meta.rows_read} rows dropped for a missing value before splitting"
    if on_purpose and dropped:
        return (
            f"Data changed: {missing}; then training data changed on purpose:"
            f" {' and '.join(on_purpose)}; validation and test labels are as given."
        )
    if dropped:
        return f"Data changed: {missing}."
    if on_purpose:
        return (
            f"Training data changed on purpose: {' and '.join(on_purpose)}; validation and test"
            f" data are as given."
        )
    return None


def with_note(markdown: str, *notes: str | None) -> str:
    """`markdown` with `notes` (None left out) as the paragraphs after its title line, in
    order."""
    present = [note for note in notes if note is not None]
    if not present:
        return markdown
    title, _, rest = markdown.partition("\n\n")
    return "\n\n".join([title, *present, rest])

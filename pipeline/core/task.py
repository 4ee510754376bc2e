"""What a task is judged by: the names of its figures and what the pages call them.

The lab has two tasks. Classification (labels 0..n_classes-1, softmax output, cross-entropy)
is judged by its error rate (1 - accuracy), per row a 0/1 loss. Regression (a quantity,
one linear output trained on mean squared error against the target standardised with the
training rows' mean and standard deviation, data/prepared/meta.json) is judged by RMSE in
the target's own units; its decision is made on the per-row squared errors (MSE), whose
mean and standard error are what the one-SE rule and the paired tests work on, and RMSE is
shown beside it. Every stage asks this module for a figure's name, so a name is spelled once
per task; the names of classification are those the lab has always written.
"""

from __future__ import annotations

from dataclasses import dataclass

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Task:
    name: str
    # The headline figure per split: `<split>_<figure>` (train_error, val_rmse, ...).
    figure: str
    figure_label: str  # what pages and plot axes call it
    word: str  # the headline figure in a sentence: error, RMSE
    # The figure the decision ranks on and takes standard errors of, the mean of a per-row
    # loss: `val_<choice>`, and with choose.folds `cv_<choice>_mean` and `cv_<choice>_se`.
    choice: str
    choice_label: str
    choice_word: str  # in a sentence: error, MSE
    # The validation figure that breaks ties among equal choosing figures.
    tiebreak: str
    data_loss: str  # what training minimises besides the L2 term
    # The predictor that ignores the features, as the pages and evaluate's `baseline` name it.
    trivial: str
    # metrics/<entry>.json: the figures compared across experiments (`dvc exp show`,
    # `dvc metrics diff`), at most 15 characters each (contracts.py says why).
    headline: tuple[str, ...]
    # history.csv's columns after `epoch` and each model run's MLflow metric keys.
    epoch_metrics: tuple[str, ...]

    def of(self, split: str) -> str:
        """The headline figure's name on `split` (train, val or test)."""
        return f"{split}_{self.figure}"

    @property
    def train_figure(self) -> str:
        return self.of("train")

    @property
    def val_figure(self) -> str:
        return self.of("val")

    @property
    def test_figure(self) -> str:
        return self.of("test")

    @property
    def choosing_figure(self) -> str:
        """The validation figure the decision ranks on without folds."""
        return f"val_{self.choice}"

    @property
    def cv_mean(self) -> str:
        return f"cv_{self.choice}_mean"

    @property
    def cv_se(self) -> str:
        return f"cv_{self.choice}_se"

    @property
    def is_regression(self) -> bool:
        return self.name == REGRESSION

    def spread_metrics(self) -> tuple[str, ...]:
        """The figures whose mean and spread over seeds the report shows (`<name>_mean`,
        `<name>_std`): the headline ones."""
        return self.headline


CLASSIFICATION_TASK = Task(
    name=CLASSIFICATION,
    figure="error",
    figure_label="error (1 - accuracy)",
    word="error",
    choice="error",
    choice_label="error (1 - accuracy)",
    choice_word="error",
    tiebreak="val_xent",
    data_loss="cross-entropy",
    trivial="majority class",
    headline=(
        "train_error",
        "val_error",
        "test_error",
        "val_xent",
        "gen_gap",
        "l2_penalty",
        "sum_sq_weights",
    ),
    epoch_metrics=("loss", "data_loss", "l2_penalty", "train_error", "val_data_loss", "val_error"),
)

REGRESSION_TASK = Task(
    name=REGRESSION,
    figure="rmse",
    figure_label="RMSE (target units)",
    word="RMSE",
    choice="mse",
    choice_label="MSE (squared target units)",
    choice_word="MSE",
    tiebreak="val_mae",
    data_loss="mean squared error (standardised target)",
    trivial="training mean",
    headline=(
        "train_rmse",
        "val_rmse",
        "test_rmse",
        "val_mse",
        "val_mae",
        "test_r2",
        "gen_gap",
        "l2_penalty",
        "sum_sq_weights",
    ),
    # train_rmse and val_rmse in the target's units; the losses on the standardised target.
    epoch_metrics=("loss", "data_loss", "l2_penalty", "train_rmse", "val_data_loss", "val_rmse"),
)

_BY_NAME = {task.name: task for task in (CLASSIFICATION_TASK, REGRESSION_TASK)}


def task_named(name: str) -> Task:
    if name not in _BY_NAME:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return _BY_NAME[name]

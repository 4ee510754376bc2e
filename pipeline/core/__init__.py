"""The shared basics every stage and concern builds on; imports nothing else of the lab.

`errors`: the lab's exceptions (one line each, with an exit code). `runner`: runs a stage's
body with those exit codes, signals and cleanup. `files`: atomic output folders.
`contracts`: the files between stages (names, `meta.json`, `sweep.json`, metric names).
`runtime`: TensorFlow's deterministic set-up. `stable_bytes`: files that hash the same on
every run. `epoch_metrics`: the per-epoch metric names (history.csv, MLflow). `progress`:
the compact progress lines of a long stage. `spread`: mean and
sample standard deviation over an entry's seeds. `private_apis`: every private Keras and MLflow API
the lab uses, and why.
"""

"""Everything MLflow, and the only package that imports it.

`store`: where runs go (MLflow's local store at the project root unless
`MLFLOW_TRACKING_URI` says otherwise). `runs`: a sweep's parent run and one child run per
trained model, created up front, and how each ends. `records`: what goes into a run.
`reused`: the run of a model the model store held, pointing at the run that trained it.
`results`: a sweep's final metrics and report into its runs (stage `record`). `views`:
links into the UI and the sweep's saved view.
"""

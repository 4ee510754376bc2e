"""What the report shows of a sweep: tables, pages and figures, rendered from data.

`table`: the sweep table and its Markdown. `plots`: the PNGs and the CSVs `dvc plots` draws.
`decision`, `choosing_page`, `choosing_figures`: choosing.Decision and choosing.Analysis in
words and pictures (`choosing.md`, best.json's numbers). `markdown`: the one table renderer.
`data_note`: the sentence saying what was done to the training data on purpose. `readers`:
what the report reads from train's and evaluate's files. `wording`: what the pages call a
task's figures (core/task.py names them in files). `uncertainty`: a regression's standard
errors of MSE and RMSE beside its figures. Imports no TensorFlow.
"""

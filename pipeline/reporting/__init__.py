"""What the report shows of a sweep: the ranked table and its plots.

`table`: the sweep table and its Markdown. `plots`: the PNGs and the CSVs `dvc plots` draws.
`data_note`: the sentence saying what was done to the training data on purpose.
Imports no TensorFlow.
"""

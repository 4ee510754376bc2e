"""What the report shows of a sweep: the ranked table and its plots.

`table`: the sweep table and its Markdown. `plots`: the PNGs and the CSVs `dvc plots` draws.
Imports no TensorFlow.
"""

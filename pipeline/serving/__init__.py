"""The chosen model, ready to use: a user's raw rows in, their labels (or values in the
target's units) out.

`predictor`: a Keras model and the preparation `prepare` saved, applied as the lab's own
evaluation applies them. `model`: the same as an MLflow pyfunc model (`LabModel`), which is
what `package`'s folder holds; with `served`, the file MLflow runs to load it. Imports
nothing of the lab beyond `pipeline.core`'s errors, preparation and runtime, so a packaged
model carries only those files (package.py).
"""

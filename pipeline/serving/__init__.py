"""The chosen model, ready to use: a user's raw rows in, their labels (or values in the
target's units) out.

`predictor`: a Keras model and the preparation `prepare` saved, applied as the lab's own
evaluation applies them. `model`: the same as an MLflow pyfunc model (`LabModel`); `served`
is the file MLflow runs to load it. `package`: the folder that holds it with its code,
byte for byte the same for the same inputs. These import nothing of the lab beyond
`pipeline.core`'s errors, preparation, runtime and task, so a packaged model carries only
those files. `loading`: a packaged model by folder or registry URI, for the command line
(pipeline/predict.py).
"""

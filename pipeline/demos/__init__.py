"""Demonstrations built outside the default pipeline: each one a command that makes its own
data and runs the lab on it in temporary project copies, leaving params.yaml, dvc.lock,
data/raw/ and pretrained/ of this checkout as they are (docs/fine-tuning.md)."""

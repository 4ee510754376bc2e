"""TensorFlow process set-up: quiet start-up, fixed seeds, deterministic kernels.

Call `init_tensorflow` at the start of a stage, before anything imports TensorFlow or Keras.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

# TensorFlow's float32 matmuls run in oneDNN's sgemm, even with TF_ENABLE_ONEDNN_OPTS=0, and
# oneDNN picks its kernels by the CPU's instruction set at run time. Kernels for different
# sets round differently: a 64-256-256-10 tanh MLP fitted for 40 epochs ends with weights
# up to 3e-7 apart under SSE4.1 and AVX2 on one machine, and the sweep's metrics differed
# between an AVX-512 and an AVX2 machine. Capped at AVX2, every x86 CPU with AVX2 runs the
# same kernels. An AVX2 machine is unchanged by the cap (bit-identical weights, same speed),
# and matmuls are a small share of a step (docs/reliability.md, Reproducibility across x86
# CPUs). Set ONEDNN_MAX_CPU_ISA yourself to override it.
CPU_ISA = "AVX2"


@contextlib.contextmanager
def _stderr_held_back() -> Iterator[None]:
    """Hold back what C++ code writes to fd 2; replay it only if the block raises.

    TensorFlow's import and device probing print lines through absl before its log level is
    read (TF_CPP_MIN_LOG_LEVEL cannot silence them); sixteen processes of that would bury
    the sweep's progress in `dvc repro` output.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def set_tensorflow_environment() -> None:
    """The environment TensorFlow reads once, at its import: set before anything imports it
    (a user's own setting wins). Without the ISA cap, whatever imports TensorFlow first in a
    process decides its kernels, and so its bits."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", CPU_ISA)


def init_tensorflow(seed: int) -> None:
    """Make this process's TensorFlow quiet and bit-for-bit repeatable for `seed`."""
    set_tensorflow_environment()
    with _stderr_held_back():
        import keras
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe, while fd 2 is held back

    keras.utils.set_random_seed(seed)  # seeds Python, NumPy and TensorFlow together
    tf.config.experimental.enable_op_determinism()
    keras.utils.disable_interactive_logging()  # per-batch progress bars; we log per epoch

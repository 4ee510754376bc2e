"""oneDNN's kernels are capped at AVX2, so x86 CPUs with AVX-512 compute what AVX2 ones do;
a user's own ONEDNN_MAX_CPU_ISA wins. Checked in oneDNN's own report of the ISA it uses."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.params import ROOT

pytestmark = pytest.mark.skipif(
    os.uname().machine != "x86_64", reason="oneDNN's ISA cap is about x86 CPUs"
)

# init_tensorflow, then one float32 matmul: oneDNN says which ISA it runs at its first use.
MATMUL = """
import os
from pipeline.core.runtime import init_tensorflow
init_tensorflow(1)
import tensorflow as tf
tf.linalg.matmul(tf.ones((32, 64)), tf.ones((64, 256)))
print("cap:", os.environ.get("ONEDNN_MAX_CPU_ISA"))
"""


def _onednn_isa(**env: str) -> tuple[str, str]:
    """The ISA oneDNN reports, and the cap the stage's environment had."""
    environ = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    result = subprocess.run(
        [sys.executable, "-c", MATMUL],
        cwd=ROOT,
        env={**environ, "ONEDNN_VERBOSE": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r"onednn_verbose,.*?,info,cpu,isa:([^,\n]*)", result.stdout + result.stderr)
    assert match, (result.stdout + result.stderr)[-2000:]
    (cap,) = re.findall(r"^cap: (.*)$", result.stdout, re.MULTILINE)
    return match.group(1), cap


def test_onednn_runs_at_most_avx2_kernels():
    isa, cap = _onednn_isa()
    assert cap == "AVX2"
    # On this machine's CPU or any other: never the wider kernels.
    assert "AVX-512" not in isa and "AMX" not in isa and "AVX10" not in isa, isa


def test_a_users_own_isa_cap_wins():
    isa, cap = _onednn_isa(ONEDNN_MAX_CPU_ISA="SSE41")
    assert cap == "SSE41" and "SSE4.1" in isa, isa

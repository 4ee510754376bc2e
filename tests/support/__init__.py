"""What the tests share: the shrunk params, throwaway projects, training helpers and local
servers. `tests/conftest.py` builds its fixtures from these, and `benchmarks/` may import
them; nothing here imports a test module or `benchmarks/`, and importing it starts nothing
(no TensorFlow, no environment writes)."""

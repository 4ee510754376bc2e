"""Speed and overhead benchmarks of the L2 lab; run `python -m benchmarks.bench`."""

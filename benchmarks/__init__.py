"""Load tests and micro-benchmarks for modelgate (run with ``python -m benchmarks``)."""

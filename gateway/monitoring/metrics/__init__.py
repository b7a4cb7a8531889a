"""Prometheus metrics: the contract's families, per-version slots and multiprocess exposition."""

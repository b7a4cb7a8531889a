"""Drift-quality benchmark: modelgate against Evidently and NannyML."""

"""Offline evaluation of a registered version: quality, calibration, fairness, latency, gates.

Everything here is pure or offline (run by the CLI or the control plane, never on the
request path). Modules are imported directly (``gateway.evaluation.gates`` ...) so that the
control plane can use the promotion gate without loading onnxruntime or pandas.
"""

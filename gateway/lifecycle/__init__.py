"""Offline model lifecycle logic: evaluation reports, fairness, promotion gates, retraining.

Everything here is pure or offline (run by the CLI or the control plane, never on the
request path). Modules are imported directly (``gateway.lifecycle.gates`` ...) so that the
control plane can use the gates and the retraining policy without loading onnxruntime or
pandas.
"""

"""The request path: routing, codecs, batching, onnxruntime runs, shadows (no control plane)."""

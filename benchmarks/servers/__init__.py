"""Baseline servers the benchmarks compare modelgate against.

Each module exposes an ASGI ``app`` for uvicorn (``uvicorn benchmarks.servers.naive:app``)
and reads its model from ``BENCH_MODEL_PATH``. They are what a competent user would write
by hand, not strawmen: orjson, one ONNX Runtime session with intra_op_num_threads=1,
uvicorn with uvloop + httptools and the access log off.
"""

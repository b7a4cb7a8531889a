"""The HTTP transport under the data plane: uvicorn's protocol, its fast path and ASGI helpers."""

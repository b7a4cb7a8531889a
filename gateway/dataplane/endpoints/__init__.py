"""The data plane's raw ASGI endpoints: inference, health and metadata."""

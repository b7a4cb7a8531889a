"""The admin HTTP API (bearer token): models, traffic, audit, the OIP repository extension."""

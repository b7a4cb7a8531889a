"""The embedded SQLite backend of the registry store (the default)."""

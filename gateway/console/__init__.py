"""The operator console: server-rendered pages over the admin API (``docs/console.md``)."""

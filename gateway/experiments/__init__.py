"""Pure statistics of A/B experiments between model versions (no I/O, no web, no database)."""

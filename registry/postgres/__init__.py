"""The PostgreSQL registry backend (``pip install modelgate[postgres]``)."""

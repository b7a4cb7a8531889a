"""Operator changes to what is served, shared by the admin API and the CLI: plan, then apply."""

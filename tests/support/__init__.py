"""Helpers shared by test modules (importable because pytest puts the repo root on sys.path)."""

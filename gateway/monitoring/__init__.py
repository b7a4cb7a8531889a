"""Monitoring of served versions: drift and health statistics, live windows, metrics, reports."""

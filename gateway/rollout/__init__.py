"""Automated canary rollouts: pure checks and statistics, persisted state, the controller."""

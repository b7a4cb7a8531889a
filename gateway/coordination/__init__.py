"""Coordination between the worker processes of one server: the leader lock and background tasks."""

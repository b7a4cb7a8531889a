"""When to retrain: the pure policy, the trigger that fires it, its delivery and its admin API."""

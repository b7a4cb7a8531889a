"""The registry's view published to the data plane in every worker: load, publish, watch."""

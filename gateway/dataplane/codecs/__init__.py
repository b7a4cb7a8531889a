"""Codecs of the data plane: OIP JSON and binary tensors, and the simple predict JSON."""

"""A/B experiments between model versions: the pure statistics (``stats``) and the shell
that runs them in a gateway."""

"""Label feedback: what each request was predicted, the labelled outcomes, and its endpoint."""

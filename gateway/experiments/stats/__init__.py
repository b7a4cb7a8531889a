"""Pure statistics of A/B experiments: plain values in, plain values out."""

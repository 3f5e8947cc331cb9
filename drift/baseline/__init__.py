"""Training/serving skew: the baseline profile built from training data (``profile``)
and its comparison with serving traffic (``skew``)."""

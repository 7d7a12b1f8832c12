"""Training: the diffusion trainer and its exponential moving average of weights."""

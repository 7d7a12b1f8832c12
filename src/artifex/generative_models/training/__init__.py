"""Training: the diffusion trainer, its EMA of weights, the ``fit`` loop and checkpoints."""

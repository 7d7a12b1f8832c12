"""Generative models: configurations, networks, diffusion models, samplers and trainers."""

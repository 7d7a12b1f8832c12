"""Denoising networks."""

"""artifex: diffusion models in JAX / Flax NNX.

Importing the top-level package is cheap: submodules load on use, and the data
layer (TensorFlow, DataRax) loads only when data is actually requested.
"""

__version__ = "0.1.0"

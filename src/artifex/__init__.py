"""artifex: generative models in JAX / Flax NNX.

Importing the top-level package is cheap: submodules load on use, and the data layer
(TFDS, DataRax) loads only when data is actually requested.
"""

from artifex._logging import configure as _configure_logging

__version__ = "0.2.0"

_configure_logging()

r"""Class-label embedding for conditional networks, with a "null" label for no class.

Classifier-free guidance (Ho & Salimans 2022) needs the conditional model
:math:`f(x_t, t, y)` and the unconditional one :math:`f(x_t, t, \varnothing)` from the same
network: row ``num_classes`` of the table is the null label :math:`\varnothing`, which the
trainer substitutes for a random share of the labels (``label_dropout``) and the sampler
uses for the unconditional half of a guided evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.initializers import standard_normal


def null_labels(num_classes: int, n: int) -> jax.Array:
    """``n`` copies of the null label (the index one past the last class)."""
    return jnp.full((n,), num_classes, jnp.int32)


class ClassEmbedding(nnx.Module):
    """``labels (B,) -> (B, dim)``: one learned vector per class and one for the null label.

    The vectors start as unit-variance normal draws (as ``torch.nn.Embedding`` and the
    class embeddings of Dhariwal & Nichol 2021): the timestep embedding they are added to is
    of that scale, so the label moves every block's scale and shift from the first step.
    """

    def __init__(self, num_classes: int, dim: int, *, rngs: nnx.Rngs):
        self.num_classes = num_classes
        self.embedding = nnx.Embed(num_classes + 1, dim, embedding_init=standard_normal, rngs=rngs)

    def __call__(self, labels: jax.Array) -> jax.Array:
        return self.embedding(labels.astype(jnp.int32))

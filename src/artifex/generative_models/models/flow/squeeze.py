r"""Squeeze: space-to-depth over 2x2 blocks, and its inverse (RealNVP, Dinh et al. 2017).

.. math::

    (N, H, W, C) \to (N, H/2, W/2, 4C),\qquad
    y_{n, i, j, (2a + b) C + c} = x_{n, 2i + a, 2j + b, c},\quad a, b \in \{0, 1\}.

It only permutes the entries, so :math:`\log|\det J| = 0`. Each scale of the flow starts with
one: it trades resolution for channels, so that the couplings (which split along channels)
see neighbouring pixels on both sides of the split.
"""

from __future__ import annotations

import jax


def squeeze(x: jax.Array) -> jax.Array:
    """``(N, H, W, C) -> (N, H/2, W/2, 4C)``; ``H`` and ``W`` must be even."""
    n, h, w, c = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs an even height and width, got shape {x.shape}")
    x = x.reshape(n, h // 2, 2, w // 2, 2, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h // 2, w // 2, 4 * c)


def unsqueeze(y: jax.Array) -> jax.Array:
    """The inverse of :func:`squeeze`: ``(N, H, W, 4C) -> (N, 2H, 2W, C)``."""
    n, h, w, c4 = y.shape
    if c4 % 4:
        raise ValueError(f"unsqueeze needs a channel count divisible by 4, got shape {y.shape}")
    c = c4 // 4
    y = y.reshape(n, h, w, 2, 2, c)
    return y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c)

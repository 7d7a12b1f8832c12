r"""GAN losses on discriminator logits, and the R1 gradient penalty. Pure functions.

Write :math:`r = D(x)` for the logits of real images, :math:`f = D(G(z))` for those of
generated ones, :math:`\sigma` for the logistic sigmoid, and
:math:`\operatorname{softplus}(a) = \log(1 + e^a)`, so that
:math:`-\log\sigma(a) = \operatorname{softplus}(-a)` and
:math:`-\log(1 - \sigma(a)) = \operatorname{softplus}(a)`: the softplus forms are the
numerically stable ones (no :math:`\log 0` for confident logits). Means run over the batch.

Non-saturating (Goodfellow et al. 2014): the discriminator is a logistic classifier and the
generator maximises :math:`\log D` instead of minimising :math:`\log(1 - D)`, whose gradient
vanishes exactly when the generator is bad:

.. math::

    L_D = \mathbb{E}[\operatorname{softplus}(-r)] + \mathbb{E}[\operatorname{softplus}(f)],
    \qquad L_G = \mathbb{E}[\operatorname{softplus}(-f)].

Hinge (Lim & Ye 2017; Miyato et al. 2018):

.. math::

    L_D = \mathbb{E}[\max(0, 1 - r)] + \mathbb{E}[\max(0, 1 + f)], \qquad
    L_G = -\mathbb{E}[f].

R1 (Mescheder et al. 2018) penalises the discriminator's input gradient on real data:

.. math::

    R_1 = \frac{\gamma}{2}\, \mathbb{E}_{x \sim p_{\text{data}}}
    \lVert \nabla_x D(x) \rVert_2^2 .
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

#: The adversarial losses :func:`discriminator_loss` and :func:`generator_loss` know.
GAN_LOSSES = ("non_saturating", "hinge")


def non_saturating_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    r"""``E[softplus(-r)] + E[softplus(f)]`` = :math:`-E\log\sigma(r) - E\log(1-\sigma(f))`."""
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits: jax.Array) -> jax.Array:
    r"""``E[softplus(-f)]`` = :math:`-E\log\sigma(f)`."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def hinge_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """``E[max(0, 1 - r)] + E[max(0, 1 + f)]``."""
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """``-E[f]``."""
    return -jnp.mean(fake_logits)


def discriminator_loss(kind: str, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """The discriminator loss named ``kind`` (one of :data:`GAN_LOSSES`)."""
    if kind == "non_saturating":
        return non_saturating_discriminator_loss(real_logits, fake_logits)
    if kind == "hinge":
        return hinge_discriminator_loss(real_logits, fake_logits)
    raise ValueError(f"loss={kind!r} is not supported; choose one of: {', '.join(GAN_LOSSES)}")


def generator_loss(kind: str, fake_logits: jax.Array) -> jax.Array:
    """The generator loss named ``kind`` (one of :data:`GAN_LOSSES`)."""
    if kind == "non_saturating":
        return non_saturating_generator_loss(fake_logits)
    if kind == "hinge":
        return hinge_generator_loss(fake_logits)
    raise ValueError(f"loss={kind!r} is not supported; choose one of: {', '.join(GAN_LOSSES)}")


def logits_and_input_gradients(
    logits_fn: Callable[[jax.Array], jax.Array], images: jax.Array
) -> tuple[jax.Array, jax.Array]:
    r"""Logits ``(N,)`` and the per-image input gradients :math:`\nabla_{x_i} D(x_i)`.

    One forward and one backward pass: the gradient of :math:`\sum_i D(x_i)` with respect to
    the batch equals the per-image gradients because each logit depends on its own image only
    (true of a discriminator without batch statistics). The result stays differentiable, so
    a penalty on it can be minimised with respect to the discriminator's parameters.
    """
    logits, pullback = jax.vjp(logits_fn, images)
    (gradients,) = pullback(jnp.ones_like(logits))
    return logits, gradients


def r1_penalty(input_gradients: jax.Array, gamma: float) -> jax.Array:
    r""":math:`\frac{\gamma}{2}\, \frac{1}{N} \sum_i \lVert \nabla_{x_i} D(x_i) \rVert^2` from the
    gradients ``(N, ...)`` on real images (see :func:`logits_and_input_gradients`)."""
    squared_norms = jnp.sum(jnp.square(input_gradients).reshape(input_gradients.shape[0], -1), 1)
    return 0.5 * gamma * jnp.mean(squared_norms)

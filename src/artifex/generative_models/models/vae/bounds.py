r"""Log-densities and variational bounds of a VAE, as pure functions (all in nats).

Shapes: a leading batch axis on every per-example quantity; ``reduce`` functions sum over all
other axes, so each returns one value per example.

With prior :math:`p(z) = \mathcal N(0, I)`, posterior
:math:`q(z \mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)` and decoder
:math:`p(x \mid z)`, the evidence lower bound is

.. math::

    \log p(x) \ge \mathcal L(x) = \mathbb E_{q(z \mid x)}[\log p(x \mid z)]
        - \mathrm{KL}(q(z \mid x) \,\|\, p(z)),

and the importance-weighted bound (Burda et al. 2016) with ``k`` samples
:math:`z_i \sim q(z \mid x)`

.. math::

    \log p(x) \ge \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k
        \frac{p(x, z_i)}{q(z_i \mid x)}\Big],
    \qquad \mathcal L_1 = \mathcal L \le \mathcal L_k \le \mathcal L_{k+1},

tightens towards :math:`\log p(x)` as ``k`` grows.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)


def sum_except_batch(x: jax.Array) -> jax.Array:
    """Sum over every axis but the first: ``(B, ...) -> (B,)``."""
    return x.reshape(x.shape[0], -1).sum(axis=1)


def kl_standard_normal(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    r"""Analytic :math:`\mathrm{KL}(\mathcal N(\mu, \operatorname{diag}\sigma^2) \,\|\,
    \mathcal N(0, I))` per example, ``(B, D) -> (B,)``:

    .. math::

        \mathrm{KL} = \tfrac12 \sum_{j=1}^D \big(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\big).
    """
    return 0.5 * sum_except_batch(jnp.square(mean) + jnp.exp(log_var) - 1.0 - log_var)


def diagonal_gaussian_log_prob(z: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    r""":math:`\log \mathcal N(z; \mu, \operatorname{diag}\sigma^2)` summed over the last axis:

    .. math::

        -\tfrac12 \sum_j \Big(\log 2\pi + \log\sigma_j^2 + \frac{(z_j - \mu_j)^2}{\sigma_j^2}\Big).

    Broadcasts over leading axes (e.g. ``(k, B, D)`` samples against ``(B, D)`` parameters).
    """
    return -0.5 * jnp.sum(LOG_2PI + log_var + jnp.square(z - mean) * jnp.exp(-log_var), axis=-1)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    r""":math:`\log \mathcal N(z; 0, I) = -\tfrac12 \sum_j (\log 2\pi + z_j^2)` (last axis)."""
    return -0.5 * jnp.sum(LOG_2PI + jnp.square(z), axis=-1)


def bernoulli_log_likelihood(x: jax.Array, logits: jax.Array) -> jax.Array:
    r"""Log-probability of binary pixels ``x`` in {0, 1} under independent Bernoullis with
    ``logits`` :math:`l` (:math:`p = \operatorname{sigmoid}(l)`), summed per example:

    .. math::

        \sum_i x_i \log p_i + (1 - x_i)\log(1 - p_i)
            = \sum_i x_i l_i - \operatorname{softplus}(l_i),

    the right-hand form being exact and stable for any logit. For ``x`` in [0, 1] it is the
    negative binary cross-entropy (not a log-probability unless ``x`` is binary).
    """
    return sum_except_batch(x * logits - jax.nn.softplus(logits))


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_scale: jax.Array) -> jax.Array:
    r"""Log-density of pixels ``x`` under independent :math:`\mathcal N(m_i, s^2)`,
    :math:`s = e^{\log s}` (``log_scale`` broadcasts: one global value or one per pixel),
    summed per example:

    .. math::

        \sum_i -\tfrac12 \log 2\pi - \log s - \frac{(x_i - m_i)^2}{2 s^2}.

    A density over continuous pixel values (it depends on their units and can be positive),
    not the probability of quantised pixels.
    """
    log_scale = jnp.broadcast_to(log_scale, x.shape)
    z = (x - mean) * jnp.exp(-log_scale)
    return sum_except_batch(-0.5 * LOG_2PI - log_scale - 0.5 * jnp.square(z))


def elbo(log_likelihood: jax.Array, kl: jax.Array, beta: float | jax.Array = 1.0) -> jax.Array:
    r"""The (beta-weighted) evidence lower bound per example from its two terms:

    .. math::

        \mathcal L_\beta = \log p(x \mid z) - \beta\, \mathrm{KL}(q(z \mid x) \,\|\, p(z)),

    with ``log_likelihood`` a one-sample (or averaged) estimate of
    :math:`\mathbb E_q \log p(x \mid z)`. ``beta = 1`` is the bound on :math:`\log p(x)`;
    other values (a beta-VAE, a KL warm-up) are training objectives, not bounds.
    """
    return log_likelihood - beta * kl


def log_importance_weights(
    log_likelihood: jax.Array, z: jax.Array, mean: jax.Array, log_var: jax.Array
) -> jax.Array:
    r""":math:`\log w = \log p(x \mid z) + \log p(z) - \log q(z \mid x)` of samples ``z``
    (``(..., D)``), given their decoder log-likelihoods (``z.shape[:-1]``)."""
    return (
        log_likelihood + standard_normal_log_prob(z) - diagonal_gaussian_log_prob(z, mean, log_var)
    )


def importance_weighted_bound(log_weights: jax.Array, axis: int = 0) -> jax.Array:
    r"""The importance-weighted bound from ``k`` log-weights along ``axis``:

    .. math::

        \log \frac1k \sum_{i=1}^k w_i = \operatorname{logsumexp}_i(\log w_i) - \log k,

    computed with ``logsumexp`` so that weights of ``e^{-100}`` (typical: :math:`\log w` is
    about minus the image's nats) neither underflow nor lose precision. With ``k = 1`` it is
    the single sample's :math:`\log w`, the one-sample ELBO estimate.
    """
    k = log_weights.shape[axis]
    return jax.scipy.special.logsumexp(log_weights, axis=axis) - math.log(k)

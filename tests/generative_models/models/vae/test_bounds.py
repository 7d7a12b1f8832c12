"""The VAE bounds against closed forms, scipy and Monte-Carlo estimates with derived tolerances.

Monte-Carlo checks allow 5 standard errors (estimated from the same draws), so a correct
implementation fails with probability below 1e-6 while an error of a few standard errors
(e.g. a missing factor 1/2, a sign) is caught.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logsumexp

from artifex.generative_models.models.vae import bounds

MEAN = np.array([[0.5, -1.2, 0.0], [2.0, 0.3, -0.7]], np.float32)
LOG_VAR = np.array([[-1.0, 0.4, 0.0], [0.9, -2.0, -0.3]], np.float32)


def test_kl_matches_a_monte_carlo_estimate_within_its_standard_error():
    n = 400_000
    eps = np.random.default_rng(0).standard_normal((n, *MEAN.shape))
    std = np.exp(0.5 * LOG_VAR.astype(np.float64))
    z = MEAN + std * eps
    # log q(z) - log p(z), per draw and example (float64 reference with scipy).
    log_q = stats.norm.logpdf(z, MEAN, std).sum(-1)
    log_p = stats.norm.logpdf(z).sum(-1)
    diff = log_q - log_p
    estimate, se = diff.mean(0), diff.std(0) / math.sqrt(n)
    analytic = np.asarray(bounds.kl_standard_normal(jnp.asarray(MEAN), jnp.asarray(LOG_VAR)))
    assert analytic.shape == (2,)
    np.testing.assert_array_less(np.abs(analytic - estimate), 5 * se)
    # And the closed form by hand: 0.5 * sum(mu^2 + s^2 - 1 - log s^2).
    by_hand = 0.5 * (MEAN**2 + np.exp(LOG_VAR) - 1 - LOG_VAR).sum(-1)
    np.testing.assert_allclose(analytic, by_hand, rtol=1e-6)


def test_kl_is_zero_exactly_at_the_prior():
    zeros = jnp.zeros((4, 5))
    np.testing.assert_array_equal(bounds.kl_standard_normal(zeros, zeros), np.zeros(4))


def test_gaussian_log_probs_match_scipy():
    z = np.random.default_rng(1).standard_normal((7, *MEAN.shape)).astype(np.float32)
    ours = bounds.diagonal_gaussian_log_prob(jnp.asarray(z), MEAN, LOG_VAR)  # broadcasts
    ref = stats.norm.logpdf(z, MEAN, np.exp(0.5 * LOG_VAR)).sum(-1)
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-5)
    prior = bounds.standard_normal_log_prob(jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(prior), stats.norm.logpdf(z).sum(-1), rtol=1e-5)


def test_bernoulli_log_likelihood_matches_scipy_and_is_stable():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (3, 4, 4, 1)).astype(np.float32)
    x = (rng.uniform(size=logits.shape) < 0.5).astype(np.float32)
    ours = np.asarray(bounds.bernoulli_log_likelihood(jnp.asarray(x), jnp.asarray(logits)))
    ref = stats.bernoulli.logpmf(x, expit(logits.astype(np.float64))).reshape(3, -1).sum(-1)
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    # Saturated logits: log p of the matching pixel is ~0, of the other one -|l|, never NaN.
    extreme = jnp.asarray([[100.0, -100.0, 100.0, -100.0]])
    values = bounds.bernoulli_log_likelihood(jnp.asarray([[1.0, 0.0, 0.0, 1.0]]), extreme)
    np.testing.assert_allclose(np.asarray(values), [-200.0], rtol=1e-6)


def test_gaussian_log_likelihood_matches_scipy_for_global_and_per_pixel_scales():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (2, 3, 3, 1)).astype(np.float32)
    mean = rng.uniform(-1, 1, x.shape).astype(np.float32)
    for log_scale in (np.float32(-1.3), rng.normal(-1, 0.3, x.shape).astype(np.float32)):
        ours = np.asarray(bounds.gaussian_log_likelihood(x, mean, jnp.asarray(log_scale)))
        ref = stats.norm.logpdf(x, mean, np.exp(log_scale)).reshape(2, -1).sum(-1)
        np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_elbo_weights_the_kl_by_beta():
    log_lik, kl = jnp.asarray([-80.0, -95.0]), jnp.asarray([20.0, 10.0])
    np.testing.assert_array_equal(bounds.elbo(log_lik, kl), [-100.0, -105.0])
    np.testing.assert_array_equal(bounds.elbo(log_lik, kl, beta=0.5), [-90.0, -100.0])


def test_importance_weighted_bound_is_a_stable_log_mean_exp():
    log_w = np.array([[-100.0, -1e4], [-101.0, -1e4 - 3.0], [-99.5, -1e4 + 1.0]], np.float32)
    ours = np.asarray(bounds.importance_weighted_bound(jnp.asarray(log_w)))
    ref = logsumexp(log_w.astype(np.float64), axis=0) - math.log(3)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)  # exp(-1e4) underflows naively
    # k = 1: the single sample's log-weight, the one-sample ELBO estimate itself.
    np.testing.assert_array_equal(
        bounds.importance_weighted_bound(jnp.asarray(log_w[:1])), log_w[0]
    )
    # Jensen: for the same samples, log mean w >= mean log w (the k-sample ELBO estimate).
    assert (ours >= log_w.mean(0)).all()


# A linear-Gaussian model with a known evidence: z ~ N(0, 1), x | z ~ N(a z, s^2) per
# dimension, so p(x) = N(x; 0, a^2 + s^2) and the posterior is Gaussian; q is a deliberately
# wrong Gaussian, which makes ELBO < IWAE_k < log p(x) strict.
A, S = 1.5, 0.5


def _log_weights(key, x, q_mean, q_log_var, k):
    eps = jax.random.normal(key, (k, *q_mean.shape))
    z = q_mean + jnp.exp(0.5 * q_log_var) * eps
    log_lik = jnp.sum(-0.5 * math.log(2 * math.pi * S**2) - (x - A * z) ** 2 / (2 * S**2), -1)
    return bounds.log_importance_weights(log_lik, z, q_mean, q_log_var), z


def test_bounds_are_ordered_and_tighten_towards_the_exact_evidence():
    x = jnp.asarray([[1.0, -0.5]])
    q_mean, q_log_var = jnp.asarray([[0.2, 0.1]]), jnp.asarray([[-0.5, 0.3]])
    log_px = float(stats.norm.logpdf(np.asarray(x), 0.0, math.sqrt(A**2 + S**2)).sum())
    # The ELBO in closed form: E_q log p(x|z) - KL(q || p).
    var = np.exp(np.asarray(q_log_var))
    expected_ll = np.sum(
        -0.5 * np.log(2 * np.pi * S**2)
        - ((np.asarray(x) - A * np.asarray(q_mean)) ** 2 + A**2 * var) / (2 * S**2)
    )
    elbo = expected_ll - float(bounds.kl_standard_normal(q_mean, q_log_var)[0])

    repeats = 20_000
    estimates = {}
    for k in (1, 10, 100):
        keys = jax.random.split(jax.random.key(k), repeats)
        log_w = jax.vmap(lambda kk, k=k: _log_weights(kk, x, q_mean, q_log_var, k)[0])(keys)
        per_repeat = np.asarray(bounds.importance_weighted_bound(log_w, axis=1))[:, 0]
        estimates[k] = (per_repeat.mean(), per_repeat.std() / math.sqrt(repeats))
    # k = 1 is the ELBO in expectation.
    mean_1, se_1 = estimates[1]
    assert abs(mean_1 - elbo) < 5 * se_1, (mean_1, elbo, se_1)
    # L_1 < L_10 < L_100 < log p(x), each gap many standard errors wide.
    (m10, se10), (m100, se100) = estimates[10], estimates[100]
    assert elbo < m10 - 5 * se10 and m10 < m100 - 5 * (se10 + se100)
    assert m100 < log_px + 5 * se100
    assert log_px - m100 < 0.1 * (log_px - elbo)  # most of the gap closed at k = 100


def test_iwae_bound_with_the_exact_posterior_is_exact_for_every_sample():
    """q = p(z|x) makes every weight equal p(x): the bound is log p(x) with no variance."""
    x = jnp.asarray([[0.8]])
    post_var = 1.0 / (1.0 + A**2 / S**2)
    post_mean = post_var * A * x / S**2
    log_w, _ = _log_weights(jax.random.key(0), x, post_mean, jnp.log(post_var) + 0 * x, 50)
    log_px = stats.norm.logpdf(0.8, 0.0, math.sqrt(A**2 + S**2))
    np.testing.assert_allclose(np.asarray(log_w), log_px, rtol=1e-5)
    np.testing.assert_allclose(float(bounds.importance_weighted_bound(log_w)[0]), log_px, rtol=1e-5)


@pytest.mark.parametrize("shape", [(4,), (4, 3, 2)])
def test_sum_except_batch(shape):
    x = jnp.arange(np.prod(shape), dtype=jnp.float32).reshape(shape)
    np.testing.assert_array_equal(
        bounds.sum_except_batch(x), np.asarray(x).reshape(shape[0], -1).sum(1)
    )

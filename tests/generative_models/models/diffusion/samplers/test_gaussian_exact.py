r"""Every sampler, driven by the exact denoiser of data whose posterior mean is closed form.

Each sample has two independent scalar "pixels": column 0 is ``N(MU, S^2)``, column 1 the
two-Gaussian mixture ``sum_k W_k N(MEANS_k, SDS_k^2)``. With :math:`x_t = a x_0 + \sigma
\epsilon` (:math:`a^2 + \sigma^2 = 1`), each component ``k`` gives
:math:`x_t \mid k \sim N(a \mu_k, v_k)`, :math:`v_k = a^2 s_k^2 + \sigma^2`, and

.. math::

    E[x_0 \mid x_t] = \sum_k r_k(x_t)\Big(\mu_k + \frac{a s_k^2}{v_k}(x_t - a\mu_k)\Big),
    \qquad r_k \propto W_k\, N(x_t; a\mu_k, v_k),

the Gaussian being the one-component case. That formula, converted to each prediction type,
is the "network": the only error left in a sample is the sampler's discretisation plus the
Monte-Carlo error of ``N`` draws. The tolerances are 4 standard errors of the sample mean
(:math:`\sigma_{data}/\sqrt N`) and variance (:math:`\sqrt{(\mu_4 - \sigma^4)/N}`, with the
exact fourth central moment), i.e. about 0.01 / 0.04 relative for the Gaussian and
0.014 / 0.027 for the mixture at ``N = 20_000``.

What the samplers do here (cosine schedule, ``T = 1000``): the variance error shrinks with
the step count for all of them; DDPM's is first order in the steps with a large constant, so
it converges at the full chain, the ODE solvers at 200 steps. Heun's first step spans
:math:`\sigma^K` from about 2e4 (cosine's noisiest end) to O(1) and, as any trapezoidal
rule with such a ratio, overshoots at 10 steps. DPM-Solver++(2M) beats DDIM at 10 steps with
``spacing="trailing"``; with ``"linspace"`` the grid's last interior interval
(``t = 111 -> 0``) spans h = 3.4 in lambda after one of 0.7, and the extrapolation with
:math:`1/(2r) = 2.5` overshoots the variance (about +70 %) while DDIM undershoots it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artifex.generative_models.core.configuration.diffusion_config import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.core.prediction import prediction_target
from artifex.generative_models.models.diffusion.samplers import SCHEDULERS
from artifex.generative_models.models.diffusion.samplers.loop import run_sampler

SCHED = create_noise_schedule(NoiseScheduleConfig(schedule_type="cosine", num_timesteps=1000))
ALPHA_BAR = jnp.asarray(np.concatenate([[1.0], SCHED.alphas_cumprod]).astype(np.float32))
N = 20_000
MU, S = 0.3, 0.5
W = np.array([0.3, 0.7])
MEANS = np.array([-0.6, 0.4])
SDS = np.array([0.15, 0.25])


def _truth() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: mean, variance and the standard error of the sample variance."""
    mix_mean = float(W @ MEANS)
    d = MEANS - mix_mean
    mix_var = float(W @ (SDS**2 + d**2))
    mix_mu4 = float(W @ (d**4 + 6 * d**2 * SDS**2 + 3 * SDS**4))
    mean = np.array([MU, mix_mean])
    var = np.array([S**2, mix_var])
    mu4 = np.array([3 * S**4, mix_mu4])
    return mean, var, np.sqrt((mu4 - var**2) / N)


MEAN, VAR, VAR_SE = _truth()
MEAN_TOL = 4 * np.sqrt(VAR / N)
VAR_TOL = 4 * VAR_SE / VAR  # relative


def posterior_mean(x_t: jax.Array, ab: jax.Array) -> jax.Array:
    """``E[x0 | x_t]`` for the two columns; ``ab``: abar_t of shape ``(N, 1)``.

    The mixture's responsibilities are a sigmoid of the log-odds (two components), written
    out per component: as fast as the Gaussian column, where a softmax over a length-2 axis
    costs 20 times more on CPU.
    """
    a = jnp.sqrt(ab)
    gauss = MU + a * S**2 / (ab * S**2 + 1 - ab) * (x_t[:, :1] - a * MU)
    y = x_t[:, 1:]
    (w0, w1), (m0, m1), (s0, s1) = W, MEANS, SDS
    v0, v1 = ab * s0**2 + 1 - ab, ab * s1**2 + 1 - ab
    c0, c1 = y - a * m0, y - a * m1
    log_odds = np.log(w1 / w0) + 0.5 * jnp.log(v0 / v1) + c0**2 / (2 * v0) - c1**2 / (2 * v1)
    e0, e1 = m0 + a * s0**2 / v0 * c0, m1 + a * s1**2 / v1 * c1
    mix = e0 + jax.nn.sigmoid(log_odds) * (e1 - e0)
    return jnp.concatenate([gauss, mix], axis=1)


def exact_network(prediction_type: str):
    """The Bayes-optimal network output for ``prediction_type``."""

    def denoise(x_t, t):
        ab = ALPHA_BAR[t + 1][:, None]
        a, sigma = jnp.sqrt(ab), jnp.sqrt(1 - ab)
        x0 = posterior_mean(x_t, ab)
        return prediction_target(prediction_type, x0, (x_t - a * x0) / sigma, a, sigma)

    return denoise


#: The network's prediction type per sampler: each type drives at least one sampler here
#: (that they all give the same samples is checked in test_ode_samplers and test_loop).
PREDICTION_TYPE = {
    "ddpm": "epsilon",
    "ddim": "v_prediction",
    "euler": "x_start",
    "heun": "v_prediction",
    "dpm_solver++": "epsilon",
}


@functools.cache
def errors(scheduler, steps, spacing="linspace"):
    """``(mean - truth, var / truth - 1)`` per column for one run from fixed noise."""
    prediction_type = PREDICTION_TYPE[scheduler]

    @jax.jit
    def sample(x_start, key):
        return run_sampler(
            exact_network(prediction_type),
            SCHED,
            x_start,
            key,
            scheduler=scheduler,
            steps=steps,
            eta=0.0,
            prediction_type=prediction_type,
            clip_denoised=False,
            spacing=spacing,
        )

    x_start = jax.random.normal(jax.random.key(0), (N, 2))
    x = np.asarray(sample(x_start, jax.random.key(1)), dtype=np.float64)
    assert np.isfinite(x).all()
    return x.mean(axis=0) - MEAN, x.var(axis=0) / VAR - 1


def converged_steps(scheduler: str) -> int:
    return SCHED.num_timesteps if scheduler == "ddpm" else 200


def test_tolerances_follow_from_the_sample_size():
    np.testing.assert_allclose(MEAN_TOL, 4 * np.sqrt(VAR) / np.sqrt(N))
    assert VAR_TOL[0] == pytest.approx(4 * np.sqrt(2 / N))  # Gaussian: mu4 = 3 sigma^4
    assert 0.02 < VAR_TOL[1] < 0.03


def test_every_prediction_type_is_used():
    assert set(PREDICTION_TYPE) == set(SCHEDULERS)
    assert set(PREDICTION_TYPE.values()) == {"epsilon", "v_prediction", "x_start"}


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_more_steps_approach_the_data(scheduler):
    _, var10 = errors(scheduler, 10)
    _, var50 = errors(scheduler, 50)
    mean, var = errors(scheduler, converged_steps(scheduler))
    assert np.all(np.abs(var50) < np.abs(var10)), (var10, var50)
    assert np.all(np.abs(var10) > VAR_TOL)  # 10 steps are visibly off: the test can tell
    assert np.all(np.abs(mean) < MEAN_TOL), mean
    assert np.all(np.abs(var) < VAR_TOL), var


@pytest.mark.parametrize("scheduler", ["ddim", "euler", "heun", "dpm_solver++"])
def test_the_gaussian_mean_is_exact_for_the_ode_solvers(scheduler):
    """Along the exact flow through the mean, ``E[x0 | x_t] = MU`` is constant, which every
    solver integrates exactly, and the rest of the map is linear: the mean's error is the
    Monte-Carlo one, scaled with the output's spread (``sqrt(var / VAR)``), even at 10 steps."""
    for steps in (10, 50):
        mean, var = errors(scheduler, steps)
        assert abs(mean[0]) < MEAN_TOL[0] * np.sqrt(1 + var[0])


def test_dpm_solver_beats_ddim_at_10_steps():
    _, ddim = errors("ddim", 10, "trailing")
    _, dpm = errors("dpm_solver++", 10, "trailing")
    assert np.all(np.abs(dpm) < 0.5 * np.abs(ddim)), (ddim, dpm)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_other_spacings_converge_too(spacing):
    for scheduler in ("euler", "dpm_solver++"):
        _, var10 = errors(scheduler, 10, spacing)
        mean, var = errors(scheduler, 200, spacing)
        assert np.all(np.abs(var) < np.minimum(VAR_TOL, np.abs(var10)))
        assert np.all(np.abs(mean) < MEAN_TOL)


def test_euler_is_ddim_up_to_rounding():
    for steps in (10, 50):
        np.testing.assert_allclose(errors("euler", steps), errors("ddim", steps), atol=1e-4)

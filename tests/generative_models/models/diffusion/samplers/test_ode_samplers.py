"""The ODE solvers (euler, heun, dpm_solver++): coefficients, step rules and the loop.

References are written independently of the implementation, in float64 NumPy: Karras et
al.'s ``sigma = sqrt((1 - abar) / abar)`` and ``x / sqrt(abar)`` coordinates for Euler and
Heun, Lu et al.'s ``lambda = log(alpha / sigma)`` recursion for DPM-Solver++(2M).
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
from artifex.generative_models.models.diffusion.samplers.coefficients import (
    sampling_timesteps,
    step_coefficients,
)
from artifex.generative_models.models.diffusion.samplers.ddim import ddim_step
from artifex.generative_models.models.diffusion.samplers.dpm_solver import dpm_solver_step
from artifex.generative_models.models.diffusion.samplers.euler import euler_step
from artifex.generative_models.models.diffusion.samplers.loop import run_sampler

ODE_SOLVERS = ("euler", "heun", "dpm_solver++")
COSINE = create_noise_schedule(NoiseScheduleConfig(schedule_type="cosine", num_timesteps=1000))
LINEAR = create_noise_schedule(NoiseScheduleConfig(schedule_type="linear", num_timesteps=1000))
MU, S = 0.3, 0.5


def karras_sigma(alpha_bar):
    return np.sqrt((1.0 - alpha_bar) / alpha_bar)


def reference_coefficients(schedule, steps, spacing):
    """Every ODE weight, from Karras sigmas (not from lambda, as the implementation)."""
    ab = np.cumprod(1.0 - schedule.betas)
    ts = sampling_timesteps(schedule.num_timesteps, steps, spacing)
    out = {k: [] for k in ("sigma_ratio", "euler_x0", "heun_x0_change", "dpm_x0", "dpm_prev_x0")}
    for i, t in enumerate(ts):
        if i == len(ts) - 1:  # to clean data: x_s = x0
            for name, value in zip(out, (0.0, 1.0, 0.0, 1.0, 0.0), strict=True):
                out[name].append(value)
            continue
        s = ts[i + 1]
        k_t, k_s = karras_sigma(ab[t]), karras_sigma(ab[s])
        alpha_s = np.sqrt(ab[s])
        euler = alpha_s * (1.0 - k_s / k_t)
        out["sigma_ratio"].append(np.sqrt(1.0 - ab[s]) / np.sqrt(1.0 - ab[t]))
        out["euler_x0"].append(euler)
        out["heun_x0_change"].append(alpha_s * (k_t / k_s - 1.0) / 2.0)
        if i == 0:
            out["dpm_x0"].append(euler)
            out["dpm_prev_x0"].append(0.0)
        else:
            r = np.log(karras_sigma(ab[ts[i - 1]]) / k_t) / np.log(k_t / k_s)
            out["dpm_x0"].append(euler * (1.0 + 1.0 / (2.0 * r)))
            out["dpm_prev_x0"].append(-euler / (2.0 * r))
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize(
    ("schedule", "steps", "spacing"),
    [
        (COSINE, 10, "linspace"),
        (COSINE, 50, "trailing"),
        (COSINE, 1000, "linspace"),
        (LINEAR, 7, "leading"),
        (LINEAR, 2, "linspace"),
        (LINEAR, 1, "trailing"),
    ],
)
def test_coefficients_match_an_independent_float64_computation(schedule, steps, spacing):
    c = step_coefficients(schedule, steps, spacing)
    for name, expected in reference_coefficients(schedule, steps, spacing).items():
        got = np.asarray(getattr(c, name), np.float64)
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-30, err_msg=name)
    ts = sampling_timesteps(schedule.num_timesteps, steps, spacing)
    np.testing.assert_array_equal(c.t_next, np.append(ts[1:], -1))
    ab = np.concatenate([[1.0], schedule.alphas_cumprod])[np.append(ts[1:], -1) + 1]
    np.testing.assert_allclose(c.signal_next, np.sqrt(ab), rtol=1e-6)
    np.testing.assert_allclose(c.sigma_next, np.sqrt(1.0 - ab), rtol=1e-6)


def test_coefficient_shapes_dtypes_and_ends():
    c = step_coefficients(COSINE, 12, "trailing")
    for name, value in c._asdict().items():
        assert value.shape == (12,), name
        assert value.dtype == (jnp.int32 if name in ("t", "t_next") else jnp.float32), name
        assert np.isfinite(np.asarray(value)).all(), name
    # first step: no history; last step: exactly x0, no correction, no next timestep
    assert float(c.dpm_prev_x0[0]) == 0.0 and float(c.dpm_x0[0]) == float(c.euler_x0[0])
    last = {name: float(value[-1]) for name, value in c._asdict().items()}
    assert last["sigma_ratio"] == last["heun_x0_change"] == last["dpm_prev_x0"] == 0.0
    assert last["euler_x0"] == last["dpm_x0"] == last["signal_next"] == 1.0
    assert last["t_next"] == -1 and last["sigma_next"] == 0.0


def test_euler_step_is_the_ddim_eta0_step():
    c = jax.tree.map(lambda a: a[3], step_coefficients(COSINE, 20))
    k1, k2 = jax.random.split(jax.random.key(0))
    x0 = jax.random.uniform(k1, (512,), minval=-1, maxval=1)
    eps = jax.random.normal(k2, x0.shape)
    x_t = c.signal * x0 + c.sigma * eps
    np.testing.assert_allclose(
        euler_step(x_t, x0, eps, c, None, None),
        ddim_step(x_t, x0, eps, c, jnp.zeros_like(x0), 0.0),
        atol=2e-6,
    )
    # the first DPM-Solver++ step has no history and is the same first-order step
    c0 = jax.tree.map(lambda a: a[0], step_coefficients(COSINE, 20))
    x_t = c0.signal * x0 + c0.sigma * eps
    np.testing.assert_array_equal(
        dpm_solver_step(x_t, x0, jnp.full_like(x0, 7.0), c0), euler_step(x_t, x0, eps, c0, 0, 0)
    )


def gaussian_x0(x_t, ab):
    a = jnp.sqrt(ab)
    return MU + a * S**2 / (ab * S**2 + 1 - ab) * (x_t - a * MU)


def network(schedule, prediction_type, x0_of=gaussian_x0):
    """A network predicting ``x0_of(x_t, abar_t)`` exactly, in ``prediction_type``'s terms."""
    table = jnp.asarray(np.concatenate([[1.0], schedule.alphas_cumprod]).astype(np.float32))

    def denoise(x_t, t):
        ab = table[t + 1].reshape((-1,) + (1,) * (x_t.ndim - 1))
        a, sigma = jnp.sqrt(ab), jnp.sqrt(1 - ab)
        x0 = x0_of(x_t, ab)
        return prediction_target(prediction_type, x0, (x_t - a * x0) / sigma, a, sigma)

    return denoise


@functools.partial(
    jax.jit, static_argnames=("schedule", "scheduler", "steps", "spacing", "pt", "clip", "x0_of")
)
def sample(
    x_start, *, schedule, scheduler, steps, spacing="linspace", pt="x_start", clip=False, x0_of=None
):
    x0_of = gaussian_x0 if x0_of is None else x0_of
    return run_sampler(
        network(schedule, pt, x0_of),
        schedule,
        x_start,
        jax.random.key(1),
        scheduler=scheduler,
        steps=steps,
        eta=0.0,
        prediction_type=pt,
        clip_denoised=clip,
        spacing=spacing,
    )


def affine_reference(schedule, scheduler, steps, spacing):
    """The sampler's output ``p z + q`` for start noise ``z``, in float64.

    With the Gaussian posterior mean every quantity is affine in ``z``; each is held as the
    pair ``[p, q]``, and the steps are written as in the papers.
    """
    ab = np.cumprod(1.0 - schedule.betas)
    ts = sampling_timesteps(schedule.num_timesteps, steps, spacing)
    one = np.array([0.0, 1.0])

    def x0_hat(x, t):  # Gaussian E[x0 | x_t], affine in x
        a = np.sqrt(ab[t])
        k = a * S**2 / (ab[t] * S**2 + 1 - ab[t])
        return k * x + (MU - k * a * MU) * one

    x = np.array([1.0, 0.0])
    previous = None  # (x0 prediction, lambda) of the previous step, for DPM-Solver++
    for i, t in enumerate(ts):
        d0 = x0_hat(x, t)
        if i == len(ts) - 1:
            return d0  # the last step lands on the x0 prediction
        s = ts[i + 1]
        alpha_t, alpha_s = np.sqrt(ab[t]), np.sqrt(ab[s])
        if scheduler in ("euler", "heun"):  # Karras et al., Alg. 1, in x / alpha
            k_t, k_s = karras_sigma(ab[t]), karras_sigma(ab[s])
            y = x / alpha_t
            slope = (y - d0) / k_t
            y_next = y + (k_s - k_t) * slope
            if scheduler == "heun":
                slope_s = (y_next - x0_hat(alpha_s * y_next, s)) / k_s
                y_next = y + (k_s - k_t) * (slope + slope_s) / 2
            x = alpha_s * y_next
        else:  # Lu et al., DPM-Solver++(2M), Alg. 2
            lam_t = np.log(alpha_t / np.sqrt(1 - ab[t]))
            lam_s = np.log(alpha_s / np.sqrt(1 - ab[s]))
            h = lam_s - lam_t
            if previous is None:
                d = d0
            else:
                r = (lam_t - previous[1]) / h
                d = (1 + 1 / (2 * r)) * d0 - previous[0] / (2 * r)
            x = np.sqrt(1 - ab[s]) / np.sqrt(1 - ab[t]) * x - alpha_s * np.expm1(-h) * d
            previous = (d0, lam_t)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("scheduler", ODE_SOLVERS)
@pytest.mark.parametrize(
    ("schedule", "steps", "spacing"),
    [
        (COSINE, 1, "linspace"),
        (COSINE, 2, "linspace"),
        (COSINE, 25, "linspace"),
        (LINEAR, 10, "trailing"),
        (LINEAR, 30, "leading"),
    ],
)
def test_the_compiled_loop_is_the_papers_recursion(schedule, scheduler, steps, spacing):
    z = jax.random.normal(jax.random.key(0), (4096, 1))
    x = np.asarray(
        sample(z, schedule=schedule, scheduler=scheduler, steps=steps, spacing=spacing),
        np.float64,
    )
    p, q = affine_reference(schedule, scheduler, steps, spacing)
    np.testing.assert_allclose(x, p * np.asarray(z, np.float64) + q, atol=2e-5 * max(1, abs(p)))


def wavy_x0(x_t, ab):
    """A nonlinear x0 field (any exact network works for comparing prediction types)."""
    return gaussian_x0(x_t, ab) + 0.3 * jnp.tanh(2 * x_t) * ab


@pytest.mark.parametrize("scheduler", ODE_SOLVERS)
def test_every_prediction_type_gives_the_same_samples(scheduler):
    z = jax.random.normal(jax.random.key(2), (256, 4, 4, 1))
    kwargs = dict(schedule=LINEAR, scheduler=scheduler, steps=20, x0_of=wavy_x0)
    ref = sample(z, pt="x_start", **kwargs)
    assert ref.shape == z.shape and ref.dtype == jnp.float32
    for pt in ("epsilon", "v_prediction"):
        # float32 round trips through the conversions: ~3e-5 (heun: 8e-5) of max(|x|, 1)
        got = sample(z, pt=pt, **kwargs)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4, err_msg=pt)


def clipped_wavy_x0(x_t, ab):
    return jnp.clip(3 * jnp.tanh(2 * x_t), -1.0, 1.0)


def raw_wavy_x0(x_t, ab):
    return 3 * jnp.tanh(2 * x_t)


@pytest.mark.parametrize("scheduler", ODE_SOLVERS)
def test_clipping_is_what_every_step_uses(scheduler):
    """A network whose ``x0`` leaves ``[-1, 1]``, clipped by the sampler, samples exactly as a
    network that clips itself: the clipped ``x0`` feeds every step, the DPM-Solver++ history
    and Heun's second evaluation, for every prediction type."""
    z = jax.random.normal(jax.random.key(3), (512, 1))
    kwargs = dict(schedule=LINEAR, scheduler=scheduler, steps=12)
    ref = sample(z, x0_of=clipped_wavy_x0, clip=False, **kwargs)
    for pt in ("x_start", "epsilon", "v_prediction"):
        got = sample(z, x0_of=raw_wavy_x0, clip=True, pt=pt, **kwargs)
        np.testing.assert_allclose(got, ref, atol=2e-4, err_msg=pt)
    unclipped = sample(z, x0_of=raw_wavy_x0, clip=False, **kwargs)
    assert float(jnp.abs(unclipped).max()) > 2.0
    assert float(jnp.abs(ref).max()) <= 1.0 + 1e-6


@pytest.mark.parametrize(("scheduler", "calls"), [("euler", 5), ("dpm_solver++", 5), ("heun", 9)])
def test_network_evaluations_per_run(scheduler, calls):
    """Heun evaluates twice per step except on the last (to sigma = 0); the others once."""
    timesteps = []

    def counting(x_t, t):
        jax.debug.callback(lambda v: timesteps.append(int(v)), t[0], ordered=True)
        return jnp.zeros_like(x_t)

    x = run_sampler(
        counting,
        LINEAR,
        jnp.ones((2, 1)),
        jax.random.key(0),
        scheduler=scheduler,
        steps=5,
        eta=0.0,
        prediction_type="x_start",
        clip_denoised=False,
    )
    jax.block_until_ready(x)
    jax.effects_barrier()
    assert len(timesteps) == calls
    ts = list(sampling_timesteps(1000, 5))
    if scheduler == "heun":
        assert timesteps == [t for pair in zip(ts[:-1], ts[1:], strict=True) for t in pair] + [0]
    else:
        assert timesteps == ts


@pytest.mark.parametrize("scheduler", ODE_SOLVERS)
def test_one_step_returns_the_first_x0_prediction(scheduler):
    z = jax.random.normal(jax.random.key(4), (64, 1))
    x = sample(z, schedule=COSINE, scheduler=scheduler, steps=1, pt="v_prediction")
    ab = float(COSINE.alphas_cumprod[-1])
    np.testing.assert_allclose(x, gaussian_x0(z, ab), atol=1e-3)

r"""The forward (noising) process, shared by the trainer and every sampler.

With betas :math:`\beta_t`, :math:`\alpha_t = 1 - \beta_t` and
:math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` for :math:`t = 0 \dots T-1`,

.. math::

    q(x_t \mid x_0) = \mathcal{N}\big(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big).

Sampling steps jump from :math:`t` to an earlier :math:`s`, so the Gaussian posterior is
written for any pair :math:`s < t` (``s = t - 1`` gives DDPM's full chain, ``s = -1``
means "clean data", :math:`\bar\alpha_{-1} = 1`):

.. math::

    q(x_s \mid x_t, x_0) = \mathcal{N}\big(c_0 x_0 + c_t x_t,\ \tilde\beta I\big),\quad
    c_0 = \frac{\sqrt{\bar\alpha_s}\,(1 - \bar\alpha_t/\bar\alpha_s)}{1 - \bar\alpha_t},\quad
    c_t = \frac{\sqrt{\bar\alpha_t/\bar\alpha_s}\,(1 - \bar\alpha_s)}{1 - \bar\alpha_t},\quad
    \tilde\beta = \frac{1 - \bar\alpha_s}{1 - \bar\alpha_t}\,(1 - \bar\alpha_t/\bar\alpha_s).

Tables are computed once in float64 with NumPy and cast to float32 when gathered, which
keeps e.g. :math:`\sqrt{1 - \bar\alpha_t}` accurate where :math:`\bar\alpha_t \approx 1`.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from artifex.generative_models.core.configuration.diffusion_config import NoiseScheduleConfig

#: Offset ``s`` of the cosine schedule (Nichol & Dhariwal 2021): keeps beta_0 from vanishing.
COSINE_OFFSET = 0.008
#: Cap on each beta of the cosine schedule, which otherwise reaches 1 at ``t = T-1``.
MAX_BETA = 0.999


def linear_betas(num_timesteps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """``beta_t`` evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al. 2020)."""
    return np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)


def scaled_linear_betas(num_timesteps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """``sqrt(beta_t)`` evenly spaced, i.e. betas grow quadratically (latent diffusion)."""
    return np.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=np.float64) ** 2


def sigmoid_betas(num_timesteps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """``beta_start + (beta_end - beta_start) * sigmoid(u)`` for ``u`` evenly in [-6, 6]."""
    u = np.linspace(-6.0, 6.0, num_timesteps, dtype=np.float64)
    return beta_start + (beta_end - beta_start) / (1.0 + np.exp(-u))


def cosine_betas(num_timesteps: int, s: float = COSINE_OFFSET, max_beta: float = MAX_BETA):
    r"""Betas whose :math:`\bar\alpha_t` follows :math:`f(t+1)/f(0)` with
    :math:`f(u) = \cos^2\big(\tfrac{u/T + s}{1 + s}\tfrac{\pi}{2}\big)` (Nichol & Dhariwal 2021),
    each beta clipped at ``max_beta``."""
    u = np.arange(num_timesteps + 1, dtype=np.float64)
    f = np.cos((u / num_timesteps + s) / (1.0 + s) * np.pi / 2.0) ** 2
    return np.minimum(1.0 - f[1:] / f[:-1], max_beta)


def make_betas(config: NoiseScheduleConfig) -> np.ndarray:
    """The betas that ``config`` describes, as float64."""
    kind = config.schedule_type
    if kind == "cosine":
        return cosine_betas(config.num_timesteps)
    makers = {
        "linear": linear_betas,
        "scaled_linear": scaled_linear_betas,
        "quadratic": scaled_linear_betas,
        "sigmoid": sigmoid_betas,
    }
    return makers[kind](config.num_timesteps, config.beta_start, config.beta_end)


def posterior_coefficients(alpha_bar_t, alpha_bar_s):
    """``(c_0, c_t, variance)`` of ``q(x_s | x_t, x_0)`` for ``s < t`` (see module docstring).

    Works elementwise on NumPy or JAX arrays; ``alpha_bar_s = 1`` (``s = -1``) gives
    ``c_0 = 1, c_t = 0, variance = 0``: the last step returns the predicted ``x_0``.
    """
    ratio = alpha_bar_t / alpha_bar_s  # = prod of alphas in (s, t]
    one_minus_t = 1.0 - alpha_bar_t
    coef_x0 = alpha_bar_s**0.5 * (1.0 - ratio) / one_minus_t
    coef_xt = ratio**0.5 * (1.0 - alpha_bar_s) / one_minus_t
    variance = (1.0 - alpha_bar_s) / one_minus_t * (1.0 - ratio)
    return coef_x0, coef_xt, variance


def _broadcast_to(values: jax.Array, x: jax.Array) -> jax.Array:
    """Reshape per-example values ``(B,)`` to ``(B, 1, ..., 1)`` so they scale ``x``."""
    return values.reshape(values.shape + (1,) * (x.ndim - values.ndim))


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """All per-timestep quantities of the forward process for one config.

    Two schedules are equal (and hash alike) when their configs are, so a schedule can
    live as a static attribute of a jitted model.
    """

    config: NoiseScheduleConfig
    betas: np.ndarray = dataclasses.field(init=False)
    alphas: np.ndarray = dataclasses.field(init=False)
    alphas_cumprod: np.ndarray = dataclasses.field(init=False)
    alphas_cumprod_prev: np.ndarray = dataclasses.field(init=False)
    sqrt_alphas_cumprod: np.ndarray = dataclasses.field(init=False)
    sqrt_one_minus_alphas_cumprod: np.ndarray = dataclasses.field(init=False)
    posterior_mean_coef1: np.ndarray = dataclasses.field(init=False)
    posterior_mean_coef2: np.ndarray = dataclasses.field(init=False)
    posterior_variance: np.ndarray = dataclasses.field(init=False)
    posterior_log_variance_clipped: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        betas = make_betas(self.config)
        alphas = 1.0 - betas
        alpha_bar = np.cumprod(alphas)
        alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
        coef1, coef2, variance = posterior_coefficients(alpha_bar, alpha_bar_prev)
        tables = {
            "betas": betas,
            "alphas": alphas,
            "alphas_cumprod": alpha_bar,
            "alphas_cumprod_prev": alpha_bar_prev,
            "sqrt_alphas_cumprod": np.sqrt(alpha_bar),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alpha_bar),
            "posterior_mean_coef1": coef1,
            "posterior_mean_coef2": coef2,
            "posterior_variance": variance,
            # variance[0] is 0; the log uses variance[1] there, as in Ho et al.
            "posterior_log_variance_clipped": np.log(np.append(variance[1], variance[1:])),
        }
        for name, table in tables.items():
            table.setflags(write=False)
            object.__setattr__(self, name, table)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoiseSchedule) and other.config == self.config

    def __hash__(self) -> int:
        return hash(self.config)

    @property
    def num_timesteps(self) -> int:
        return self.config.num_timesteps

    def alpha_bar(self, t: jax.Array) -> jax.Array:
        """:math:`\\bar\\alpha_t` as float32, with :math:`\\bar\\alpha_{-1} = 1`."""
        table = np.concatenate([[1.0], self.alphas_cumprod]).astype(np.float32)
        return jnp.asarray(table)[jnp.asarray(t) + 1]

    def snr(self, t: jax.Array) -> jax.Array:
        """Signal-to-noise ratio :math:`\\bar\\alpha_t / (1 - \\bar\\alpha_t)`."""
        table = (self.alphas_cumprod / (1.0 - self.alphas_cumprod)).astype(np.float32)
        return jnp.asarray(table)[t]

    def scales(self, t: jax.Array, like: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(sqrt(abar_t), sqrt(1 - abar_t))`` for per-example ``t``, shaped to scale ``like``."""
        signal = jnp.asarray(self.sqrt_alphas_cumprod.astype(np.float32))[t]
        sigma = jnp.asarray(self.sqrt_one_minus_alphas_cumprod.astype(np.float32))[t]
        return _broadcast_to(signal, like), _broadcast_to(sigma, like)

    def add_noise(self, x0: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
        """Sample ``x_t ~ q(x_t | x_0)`` as ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

        ``t`` holds one integer timestep per example (shape ``(B,)``).
        """
        signal, sigma = self.scales(t, x0)
        return signal * x0 + sigma * noise


@functools.lru_cache(maxsize=32)
def create_noise_schedule(config: NoiseScheduleConfig) -> NoiseSchedule:
    """The :class:`NoiseSchedule` for ``config`` (one shared object per distinct config)."""
    if not isinstance(config, NoiseScheduleConfig):
        raise TypeError(f"create_noise_schedule expects a NoiseScheduleConfig, got {config!r}")
    return NoiseSchedule(config)

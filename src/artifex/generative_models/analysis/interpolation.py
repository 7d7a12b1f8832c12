r"""Spherical interpolation between starting noises, decoded by the samplers.

High-dimensional Gaussian noise lies near a sphere of radius :math:`\sqrt D`. Linear
interpolation cuts through the inside of the sphere (the midpoint of two independent draws
has norm about :math:`\sqrt{D/2}`, noise the model never saw), whereas spherical
interpolation (slerp, Shoemake 1985) follows the great circle:

.. math::

    \mathrm{slerp}(z_0, z_1; \lambda) =
      \frac{\sin((1-\lambda)\theta)}{\sin\theta} z_0 + \frac{\sin(\lambda\theta)}{\sin\theta} z_1,
    \qquad \cos\theta = \frac{\langle z_0, z_1\rangle}{\lVert z_0\rVert\,\lVert z_1\rVert}.

For unit vectors the result is a unit vector at angle :math:`\lambda\theta` from
:math:`z_0`. Decoding each point with deterministic DDIM (``eta = 0``) gives a smooth path
between two samples; stochastic DDPM adds fresh noise at every step, so the path is not smooth.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from artifex.visualization._matplotlib import new_figure, save_figure
from artifex.visualization.images import make_grid

#: Below this angle (radians) slerp falls back to linear interpolation (sin(theta) ~ 0).
PARALLEL_EPS = 1e-6


def slerp(z0: jax.Array, z1: jax.Array, fractions) -> jax.Array:
    """Spherical interpolation of two same-shape arrays (treated as flat vectors).

    Returns ``(len(fractions), *z0.shape)``; ``fractions`` 0 and 1 give ``z0`` and ``z1``.
    Antipodal inputs (``theta = pi``) have no unique great circle and are not supported.
    """
    z0, z1 = jnp.asarray(z0, jnp.float32), jnp.asarray(z1, jnp.float32)
    if z0.shape != z1.shape:
        raise ValueError(f"slerp needs equal shapes, got {z0.shape} and {z1.shape}")
    lam = jnp.asarray(fractions, jnp.float32).reshape((-1,) + (1,) * z0.ndim)
    cos = jnp.vdot(z0, z1) / (jnp.linalg.norm(z0) * jnp.linalg.norm(z1))
    theta = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    sin = jnp.sin(theta)
    safe_sin = jnp.where(theta < PARALLEL_EPS, 1.0, sin)
    w0 = jnp.where(theta < PARALLEL_EPS, 1.0 - lam, jnp.sin((1.0 - lam) * theta) / safe_sin)
    w1 = jnp.where(theta < PARALLEL_EPS, lam, jnp.sin(lam * theta) / safe_sin)
    return w0 * z0 + w1 * z1


def interpolate_and_decode(
    model,
    z0: jax.Array,
    z1: jax.Array,
    *,
    num_points: int = 8,
    scheduler: str = "ddim",
    steps: int | None = None,
    eta: float | None = None,
    key: jax.Array,
) -> np.ndarray:
    """Decode ``num_points`` slerp points between noises ``z0``, ``z1`` (each ``(H, W, C)``).

    All points go through one ``model.sample(initial_noise=...)`` call, so one compiled
    program decodes the whole path. Returns ``(num_points, H, W, C)``.
    """
    path = slerp(z0, z1, np.linspace(0.0, 1.0, num_points))
    images = model.sample(scheduler=scheduler, steps=steps, eta=eta, key=key, initial_noise=path)
    return np.asarray(images)


def save_interpolation_strips(
    strips: dict[str, np.ndarray], path: str | Path, *, title: str | None = None
) -> Path:
    """One labelled row per entry of ``strips`` (``{label: (num_points, H, W, C)}``)."""
    fig = new_figure(figsize=(1.0 * max(len(s) for s in strips.values()), 1.1 * len(strips)))
    axes = fig.subplots(len(strips), 1, squeeze=False)[:, 0]
    for ax, (label, images) in zip(axes, strips.items(), strict=True):
        grid = make_grid(images, nrow=len(images))
        ax.imshow(
            grid[..., 0] if grid.shape[-1] == 1 else grid,
            cmap="gray",
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        axes[0].set_title(title, fontsize=10)
    return save_figure(fig, path)


def interpolation_study(
    model,
    path: str | Path,
    *,
    key: jax.Array,
    num_points: int = 8,
    ddpm_steps: int | None = None,
    ddim_steps: int | None = None,
    pairs: int = 1,
) -> tuple[Path, dict[str, np.ndarray]]:
    """Draw ``pairs`` noise pairs, decode each slerp path with DDPM and DDIM (eta=0), save.

    Returns the figure path and the decoded strips ``{"DDPM 1/2": ..., "DDIM 1/2": ...}``.
    """
    noise_key, ddpm_key, ddim_key = jax.random.split(key, 3)
    shape = tuple(model.config.input_shape)
    z = jax.random.normal(noise_key, (pairs, 2, *shape), jnp.float32)
    strips: dict[str, np.ndarray] = {}
    for p in range(pairs):
        tag = f" {p + 1}" if pairs > 1 else ""
        strips[f"DDPM{tag}"] = interpolate_and_decode(
            model,
            z[p, 0],
            z[p, 1],
            num_points=num_points,
            scheduler="ddpm",
            steps=ddpm_steps,
            key=jax.random.fold_in(ddpm_key, p),
        )
        strips[f"DDIM η=0{tag}"] = interpolate_and_decode(
            model,
            z[p, 0],
            z[p, 1],
            num_points=num_points,
            scheduler="ddim",
            steps=ddim_steps,
            eta=0.0,
            key=jax.random.fold_in(ddim_key, p),
        )
    figure = save_interpolation_strips(
        strips, path, title="slerp between two starting noises x_T (left → right)"
    )
    return figure, strips


def angles_to_start(path: np.ndarray) -> np.ndarray:
    """Angle (radians) between each point of a path and its first point (for checks/plots)."""
    flat = np.asarray(path, dtype=np.float64).reshape(len(path), -1)
    cos = flat @ flat[0] / (np.linalg.norm(flat, axis=1) * np.linalg.norm(flat[0]))
    return np.arccos(np.clip(cos, -1.0, 1.0))

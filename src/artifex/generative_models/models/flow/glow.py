r"""FlowModel: the multi-scale RealNVP/Glow architecture (Dinh et al. 2017; Kingma & Dhariwal
2018).

With :math:`L` = ``num_scales`` and :math:`K` = ``steps_per_scale``, the flow :math:`f` maps a
continuous image :math:`x` (the centred, dequantised data, see
:mod:`~artifex.generative_models.models.flow.dequantization`) to latents :math:`z`::

    h <- logit(alpha + (1 - 2 alpha)(x + 1/2))            # fixed; skipped if logit_alpha=None
    for scale l = 1 .. L:
        h <- squeeze(h)                                   # (H, W, C) -> (H/2, W/2, 4C)
        K times: h <- coupling(mix(actnorm(h)))           # one flow step
        if l < L: (h, eps_l) <- split(h)                  # factor out half the channels
    z = (eps_1, ..., eps_{L-1}, h)                        # flattened and concatenated

Every piece is invertible with a cheap log-determinant, so by the change of variables

.. math::

    \log p(x) = \log\mathcal{N}(z; 0, I) + \log\left|\det \frac{\partial f}{\partial x}\right|
    = -\tfrac12 \lVert z \rVert^2 - \tfrac{D}{2}\log 2\pi + \sum_{\text{layers}} \log|\det J|.

The factored-out halves are modelled by Glow's learned conditional prior
:math:`\mathcal{N}(\mu(h), \sigma(h)^2)` (``split_prior="conditional"``, default), written as an
affine step to :math:`\varepsilon_l` (see :mod:`~artifex.generative_models.models.flow.split`),
or by a standard normal (``"standard"``); the last scale's output has a learned mean and
log-std per position (``learn_top``, Glow's ``learntop``, folded in the same way) or a
standard-normal prior. So every latent is standard normal, and :meth:`FlowModel.sample` draws
:math:`z \sim \mathcal{N}(0, T^2 I)` at temperature :math:`T` and returns :math:`f^{-1}(z)`
as images. Factoring out halves the work of each later scale, and the kept half carries the
coarse structure to coarser resolutions.

After the fixed logit (see :mod:`~artifex.generative_models.models.flow.logit`), a fresh
model is the identity map up to the rotations of its 1x1 convolutions (couplings and priors
start at zero, actnorm at scale 1 and bias 0), so its density starts as :math:`\mathcal{N}(0,
I)` on the logits. :meth:`FlowModel.initialize` then sets every actnorm from a batch
of data (zero mean, unit variance of its input, layer by layer).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration.flow_config import FlowConfig
from artifex.generative_models.models.flow.actnorm import ActNorm
from artifex.generative_models.models.flow.coupling import AffineCoupling
from artifex.generative_models.models.flow.dequantization import dequantize, to_images
from artifex.generative_models.models.flow.invertible_conv import channel_mixing
from artifex.generative_models.models.flow.logit import LogitTransform
from artifex.generative_models.models.flow.split import LearnedTopPrior, Split
from artifex.generative_models.models.flow.squeeze import squeeze, unsqueeze


class FlowStep(nnx.Module):
    """One step of flow: ``actnorm`` (optional) -> channel mixing -> affine coupling."""

    def __init__(self, channels: int, config: FlowConfig, *, rngs: nnx.Rngs):
        self.actnorm = ActNorm(channels) if config.actnorm else None
        self.mixing = channel_mixing(config.invertible_conv, channels, rngs=rngs)
        self.coupling = AffineCoupling(
            channels, config.hidden_channels, config.coupling_scale, rngs=rngs
        )

    def forward(self, x: jax.Array, *, init: bool = False) -> tuple[jax.Array, jax.Array]:
        """``(y, log_det)``; ``init`` first sets the actnorm from ``x`` itself."""
        log_det = jnp.zeros(x.shape[:1], jnp.float32)
        if self.actnorm is not None:
            if init:
                self.actnorm.initialize(x)
            x, term = self.actnorm.forward(x)
            log_det = log_det + term
        for layer in (self.mixing, self.coupling):
            x, term = layer.forward(x)
            log_det = log_det + term
        return x, log_det

    def inverse(self, y: jax.Array) -> jax.Array:
        y = self.coupling.inverse(y)
        y = self.mixing.inverse(y)
        return self.actnorm.inverse(y) if self.actnorm is not None else y


class FlowModel(nnx.Module):
    """A multi-scale normalizing flow built from a :class:`FlowConfig`.

    ``forward``, ``inverse`` and ``log_prob`` work on the model's continuous variable (the
    centred dequantised image, about ``[-1/2, 1/2)``, NHWC of ``config.input_shape``);
    ``sample`` and ``initialize`` speak images in [-1, 1], like the data iterator.

    Args:
      config: the validated configuration.
      rngs: ``params`` initialises the 1x1 convolutions' rotations and the coupling networks.
    """

    def __init__(self, config: FlowConfig, *, rngs: nnx.Rngs):
        if not isinstance(config, FlowConfig):
            raise TypeError(f"FlowModel expects a FlowConfig, got {type(config).__name__}")
        self.config = config
        height, width, channels = config.input_shape
        alpha = config.logit_alpha
        self.logit = LogitTransform(alpha) if alpha is not None else None
        scales, splits, latent_shapes = [], [], []
        for level in range(config.num_scales):
            height, width, channels = height // 2, width // 2, channels * 4
            scales.append(
                nnx.List(
                    [FlowStep(channels, config, rngs=rngs) for _ in range(config.steps_per_scale)]
                )
            )
            if level < config.num_scales - 1:
                splits.append(Split(channels, config.split_prior, rngs=rngs))
                channels //= 2
                latent_shapes.append((height, width, channels))
        latent_shapes.append((height, width, channels))
        self.top_prior = LearnedTopPrior((height, width, channels)) if config.learn_top else None
        self.scales = nnx.List(scales)
        self.splits = nnx.List(splits)
        #: (H, W, C) of each latent piece, in the order of the flat ``z``.
        self.latent_shapes = tuple(latent_shapes)

    # ------------------------------------------------------------------ the bijection
    @property
    def num_dims(self) -> int:
        """``D``, the dimensions of one image (and of its latent ``z``)."""
        return self.config.num_dims

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(z, log_det)``: standard-normal latents ``(N, D)`` (the pieces of every scale,
        flattened and concatenated) and ``log|det dz/dx|`` of shape ``(N,)``, the logit and
        the learned priors' affine steps included."""
        return self._forward(x, init=False)

    def _forward(self, x: jax.Array, *, init: bool) -> tuple[jax.Array, jax.Array]:
        inputs.check_images("x", x, self.config.input_shape)  # at trace time: free when jitted
        h = x.astype(jnp.float32)
        log_det = jnp.zeros(h.shape[:1], jnp.float32)
        if self.logit is not None:
            h, log_det = self.logit.forward(h)
        latents = []
        for level, steps in enumerate(self.scales):
            h = squeeze(h)
            for step in steps:
                h, term = step.forward(h, init=init)
                log_det = log_det + term
            if level < len(self.splits):
                h, eps, term = self.splits[level].forward(h)
                log_det = log_det + term
                latents.append(eps.reshape(eps.shape[0], -1))
        if self.top_prior is not None:
            h, term = self.top_prior.forward(h)
            log_det = log_det + term
        latents.append(h.reshape(h.shape[0], -1))
        return jnp.concatenate(latents, axis=1), log_det

    def inverse(self, z: jax.Array) -> jax.Array:
        """The input ``x`` (NHWC) whose :meth:`forward` gives the latents ``z`` ``(N, D)``."""
        z = jnp.asarray(z, jnp.float32)
        if z.ndim != 2 or z.shape[1] != self.num_dims:
            raise ValueError(f"z.shape={z.shape} must be (N, {self.num_dims})")
        sizes = [math.prod(shape) for shape in self.latent_shapes]
        offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        pieces = [
            z[:, offsets[i] : offsets[i + 1]].reshape(-1, *shape)
            for i, shape in enumerate(self.latent_shapes)
        ]
        h = pieces[-1]
        if self.top_prior is not None:
            h = self.top_prior.inverse(h)
        for level in reversed(range(len(self.scales))):
            if level < len(self.splits):
                h = self.splits[level].inverse(h, pieces[level])
            for step in reversed(self.scales[level]):
                h = step.inverse(h)
            h = unsqueeze(h)
        return self.logit.inverse(h) if self.logit is not None else h

    def log_prob(self, x: jax.Array) -> jax.Array:
        """``log p(x)`` in nats, shape ``(N,)``, of continuous inputs ``x`` (NHWC)."""
        z, log_det = self.forward(x)
        log_normal = -0.5 * jnp.sum(z**2, axis=1) - 0.5 * self.num_dims * math.log(2 * math.pi)
        return log_normal + log_det

    # ------------------------------------------------------------------ data-dependent init
    @property
    def initialized(self) -> bool:
        """Whether every actnorm was set from data (True for a model without actnorm).

        Reads the flags on the host: call it outside compiled code.
        """
        flags = [
            bool(step.actnorm.initialized[...])
            for steps in self.scales
            for step in steps
            if step.actnorm is not None
        ]
        return all(flags)

    def initialize(self, images: Any, *, key: jax.Array | None = None) -> None:
        """Set every actnorm from a batch: zero mean and unit variance per channel of its
        input, one layer after the other in a single compiled forward pass.

        Args:
          images: a batch in [-1, 1] (NHWC; uint8 pixels are accepted too), or a data batch
            ``{"image": ...}``; dequantised with ``key`` (default ``jax.random.key(0)``). A
            few hundred images give stable statistics.
        """
        if isinstance(images, dict):
            images = images["image"]
        images = jnp.asarray(images)
        if images.dtype == jnp.uint8:
            images = images.astype(jnp.float32) / 127.5 - 1.0
        inputs.check_images("images", images, self.config.input_shape)
        key = jax.random.key(0) if key is None else inputs.as_key(key)
        _initialize(self, images, key)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, *, key: jax.Array, temperature: float = 1.0) -> jax.Array:
        """``n`` images in [-1, 1] (NHWC): ``f^{-1}(z)`` for ``z ~ N(0, temperature^2 I)``.

        One compiled program per ``n`` (and model structure); ``temperature`` is traced.
        Temperatures below 1 trade diversity for smoother samples (Glow samples faces at 0.7).
        """
        n = inputs.check_count("n", n)
        try:
            value = float(temperature)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(temperature, bool) or not 0.0 <= value < math.inf:
            raise ValueError(f"temperature={temperature!r} must be a finite number >= 0")
        graphdef, state = nnx.split(self)
        key = inputs.as_key(key)
        return _compiled_sample(graphdef, state, key, jnp.float32(value), n=n)


@nnx.jit
def _initialize(model: FlowModel, images: jax.Array, key: jax.Array) -> None:
    x = dequantize(images, key, model.config.num_bits)
    model._forward(x, init=True)


@functools.partial(jax.jit, static_argnames=("graphdef", "n"))
def _compiled_sample(graphdef, state, key, temperature, *, n):
    model: FlowModel = nnx.merge(graphdef, state)
    z = temperature * jax.random.normal(key, (n, model.num_dims), jnp.float32)
    return to_images(model.inverse(z), model.config.num_bits)

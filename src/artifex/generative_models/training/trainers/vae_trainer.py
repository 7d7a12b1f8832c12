r"""VAETrainer: the negative-ELBO training step, the EMA of weights and likelihood evaluation.

The trainer protocol (:mod:`artifex.generative_models.training.protocol`):
``state = trainer.init_state(model, optimizer)`` builds a
:class:`~artifex.generative_models.training.state.TrainState`, and
``nnx.jit(trainer.train_step)(state, batch, key)`` runs, as one XLA program, the data draw
(dynamic binarisation or dequantisation, see :mod:`artifex.generative_models.models.vae.vae`),
the reparameterised forward pass, the loss

.. math::

    \ell = \frac1B \sum_{b=1}^B \Big(-\log p(x_b \mid z_b)
        + \beta_s\, \mathrm{KL}\big(q(z \mid x_b) \,\|\, \mathcal N(0, I)\big)\Big),
    \qquad z_b \sim q(z \mid x_b),

in nats per image, its gradient, the optimizer update and the EMA update (when due). The KL
weight warms up linearly, :math:`\beta_s = \beta \min(1, s / S_{\mathrm{warm}})` at the
0-based step :math:`s` read from ``state.step`` inside the program, so resuming a run
continues the ramp where it stopped. With :math:`\beta_s = 1` the loss is the negative ELBO, an
upper bound on :math:`-\log p(x)`.

:func:`likelihood_bounds` evaluates a model on held-out images: the ELBO and the
importance-weighted bound (IWAE) in nats per image. For the Bernoulli decoder, held-out digits
are binarised once with a fixed seed (the training digits are re-binarised every step); for
the Gaussian decoder they are dequantised once with a fixed seed and the nats are those of a
density over the [-1, 1] pixel scale (``bits_per_dim`` converts them to an 8-bit likelihood).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration import validation as v
from artifex.generative_models.models.vae import bounds
from artifex.generative_models.models.vae.vae import VAEModel, discrete_nats
from artifex.generative_models.training.state import TrainState


@dataclasses.dataclass(frozen=True, kw_only=True)
class VAETrainingConfig:
    """How the VAE is trained.

    Attributes:
      beta: the KL weight after the warm-up (1: the ELBO; > 1 a beta-VAE's stronger
        pull towards the prior; < 1 sharper reconstructions, a looser bound).
      kl_warmup_steps: steps over which the KL weight rises linearly from 0 to ``beta``
        (0: ``beta`` from the first step). Early on, a full KL term pushes the posterior onto
        the prior before the decoder learned to use ``z`` (posterior collapse); the ramp
        lets reconstruction lead first.
      ema_decay: the largest EMA decay, reached after the warm-up (see ``training.ema``).
      ema_update_every: update the EMA on every this many steps (0-based steps ``s`` with
        ``s % ema_update_every == 0``), inside the compiled step.
    """

    beta: float = 1.0
    kl_warmup_steps: int = 0
    ema_decay: float = 0.999
    ema_update_every: int = 1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        v.check_float(owner, "beta", self.beta, low=0.0)
        v.check_int(owner, "kl_warmup_steps", self.kl_warmup_steps, minimum=0)
        v.check_float(owner, "ema_decay", self.ema_decay, low=0.0, high=1.0, high_inclusive=False)
        v.check_int(owner, "ema_update_every", self.ema_update_every, minimum=1)


class VAETrainer:
    """Trains a :class:`VAEModel` on the (beta-weighted) negative ELBO; keeps an EMA of it.

    Args:
      config: training options.
    """

    def __init__(self, config: VAETrainingConfig | None = None):
        self.config = config if config is not None else VAETrainingConfig()

    def kl_weight(self, step: jax.Array | int) -> jax.Array:
        """:math:`\\beta_s = \\beta \\min(1, s / S_{\\mathrm{warm}})` at the 0-based ``step``
        (traceable)."""
        warmup = self.config.kl_warmup_steps
        if warmup == 0:
            return jnp.float32(self.config.beta)
        ramp = jnp.minimum(1.0, jnp.asarray(step, jnp.float32) / warmup)
        return self.config.beta * ramp

    def loss(
        self, model: VAEModel, images: jax.Array, key: jax.Array, beta: jax.Array | float = 1.0
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Mean of ``-log p(x|z) + beta KL`` over images in [-1, 1], and its terms (nats)."""
        data_key, z_key = jax.random.split(key)
        target, inputs = model.observe(images, data_key)
        out = model(inputs, key=z_key)
        log_likelihood = model.log_likelihood(target, out.decoded)
        kl = bounds.kl_standard_normal(out.mean, out.log_var)
        loss = -jnp.mean(bounds.elbo(log_likelihood, kl, beta))
        terms = {
            "elbo": jnp.mean(bounds.elbo(log_likelihood, kl)),
            "kl": jnp.mean(kl),
            "reconstruction": -jnp.mean(log_likelihood),
        }
        return loss, terms

    def init_state(self, model: VAEModel, optimizer: nnx.Optimizer) -> TrainState:
        """The training state: the model, its optimizer and an EMA copy of the model."""
        if not isinstance(model, VAEModel):
            raise TypeError(f"VAETrainer trains a VAEModel, got {type(model).__name__}")
        return TrainState({"model": model}, {"model": optimizer}, ema=("model",))

    def train_step(
        self, state: TrainState, batch: dict[str, Any], key: jax.Array
    ) -> dict[str, jax.Array]:
        """One optimisation step on ``batch["image"]`` (in [-1, 1]); wrap it in ``nnx.jit``.

        Returns ``{"loss", "grad_norm", "elbo", "kl", "reconstruction", "beta"}``: the loss
        and ELBO terms in nats per image (``reconstruction`` is ``-log p(x|z)``), ``beta``
        the KL weight this step used.
        """
        model = state.model
        images = inputs.image_batch(batch, model.config.input_shape)
        beta = self.kl_weight(state.step[...])

        def loss_fn(m):
            return self.loss(m, images, key, beta)

        (loss, terms), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        state.optimizers["model"].update(model, grads)
        state.update_ema(self.config.ema_decay, self.config.ema_update_every)
        state.step[...] += 1
        return {"loss": loss, "grad_norm": optax.tree.norm(grads), **terms, "beta": beta}

    def generate(
        self, state: TrainState, n: int, key: jax.Array, *, temperature: float = 1.0
    ) -> jax.Array:
        """``n`` images in [-1, 1] from the EMA weights (the model's before the first EMA
        update); see :meth:`VAEModel.sample`."""
        return state.sample_model().sample(n, key=key, temperature=temperature)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def likelihood_bounds(
    model: VAEModel,
    images_uint8: np.ndarray | jax.Array,
    key: jax.Array,
    *,
    num_importance_samples: int = 100,
    batch_size: int = 100,
    samples_per_pass: int = 10,
    data_seed: int = 0,
) -> dict[str, float]:
    """ELBO and importance-weighted bound of held-out images, in nats per image.

    The images are turned into what the decoder models once, from ``data_seed`` (so every
    call, e.g. every evaluation during training, scores the same data): a Bernoulli
    binarisation of ``uint8 / 255``, or a uniform dequantisation for the Gaussian decoder (its
    nats are then those of a density over the [-1, 1] scale). For each image,
    ``num_importance_samples`` draws :math:`z_i \\sim q(z \\mid x)` give

    - ``elbo``: :math:`\\frac1k \\sum_i \\log p(x \\mid z_i) - \\mathrm{KL}(q \\| p)`
      (analytic KL), the ELBO estimated with ``k`` samples;
    - ``iwae``: :math:`\\log \\frac1k \\sum_i p(x, z_i) / q(z_i \\mid x)`, the tighter bound;
    - ``nll``: ``-iwae``, the best upper bound on :math:`-\\log p(x)` here;
    - ``bits_per_dim`` (Gaussian only): ``discrete_nats(nll) / (D log 2)``, an upper bound
      on the 8-bit images' negative log-likelihood per pixel and channel.

    All values are averages over the images. Everything runs as one compiled program, a
    sequential loop over batches of ``batch_size`` images and, inside it, over groups of
    ``samples_per_pass`` importance samples (rounded down to a divisor of ``k``), so memory
    holds ``batch_size * samples_per_pass`` decoded images at a time whatever the totals.

    Args:
      model: the model to evaluate (e.g. ``state.sample_model()``).
      images_uint8: ``(N, H, W, C)`` uint8 images of the model's input shape.
      key: PRNG key of the importance samples.
      num_importance_samples: ``k``; 100 or more for the usual published IWAE figures.
      batch_size: images per pass.
      samples_per_pass: importance samples per pass.
      data_seed: seed of the fixed binarisation / dequantisation.
    """
    images = np.asarray(images_uint8)
    shape = tuple(model.config.input_shape)
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != shape:
        raise ValueError(
            f"images_uint8 must be uint8 of shape (N, *{shape}), got {images.dtype} {images.shape}"
        )
    for name, value in (
        ("num_importance_samples", num_importance_samples),
        ("batch_size", batch_size),
        ("samples_per_pass", samples_per_pass),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")
    n = images.shape[0]
    batch = min(batch_size, n)
    num_batches = math.ceil(n / batch)
    padded = np.zeros((num_batches * batch, *shape), np.uint8)  # one shape: one compilation
    padded[:n] = images
    k = num_importance_samples
    chunk = _largest_divisor_at_most(k, samples_per_pass)
    graphdef, state = nnx.split(model)
    elbo, iwae = _bounds_program(
        graphdef,
        state,
        jnp.asarray(padded.reshape(num_batches, batch, *shape)),
        jax.random.key(data_seed),
        key,
        k=k,
        chunk=chunk,
    )
    elbo, iwae = (np.asarray(a, np.float64).reshape(-1)[:n] for a in (elbo, iwae))
    result = {"elbo": float(elbo.mean()), "iwae": float(iwae.mean()), "nll": float(-iwae.mean())}
    if model.config.decoder == "gaussian":
        num_dims = int(np.prod(shape))
        nats = discrete_nats(-iwae.mean(), num_dims)
        result["bits_per_dim"] = float(nats / (num_dims * math.log(2)))
    return result


@functools.partial(jax.jit, static_argnames=("graphdef", "k", "chunk"))
def _bounds_program(graphdef, state, images, data_key, key, *, k, chunk):
    """Per-image ELBO and IWAE ``(num_batches, batch)`` of uint8 ``images``
    ``(num_batches, batch, H, W, C)``.

    Image ``n`` is binarised (or dequantised) with ``fold_in(data_key, n)`` and its ``i``-th
    importance sample drawn with ``fold_in(fold_in(key, n), i)``: the result does not depend
    on ``batch_size`` or ``samples_per_pass``.
    """
    model: VAEModel = nnx.merge(graphdef, state)
    num_batches, batch = images.shape[:2]
    flat = images.reshape(num_batches * batch, *images.shape[2:]).astype(jnp.float32)
    index = jnp.arange(flat.shape[0])
    data_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(data_key, index)
    target, inputs = jax.vmap(lambda kk, x: model.observe(x, kk))(
        data_keys, flat[:, None] / 127.5 - 1.0
    )  # one image at a time, (N, 1, H, W, C)
    image_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, index)

    def batched(a):
        return a.reshape(num_batches, batch, *a.shape[-3:] if a.ndim > 1 else ())

    def one_batch(args):
        target, inputs, keys = args
        mean, log_var = model.encode(inputs)

        def draw(image_key, sample_index):
            return jax.random.normal(
                jax.random.fold_in(image_key, sample_index), mean.shape[-1:], mean.dtype
            )

        def one_pass(_, pass_index):
            samples = pass_index * chunk + jnp.arange(chunk)
            eps = jax.vmap(jax.vmap(draw, in_axes=(None, 0)), in_axes=(0, None))(keys, samples)
            z = mean[:, None] + jnp.exp(0.5 * log_var)[:, None] * eps  # (B, chunk, D)
            decoded = model.decode(z.reshape(-1, z.shape[-1]))
            repeated = jnp.repeat(target, chunk, axis=0)  # image-major, as z was flattened
            log_lik = model.log_likelihood(repeated, decoded).reshape(-1, chunk)
            log_w = bounds.log_importance_weights(log_lik, z, mean[:, None], log_var[:, None])
            return None, (log_lik, log_w)

        _, (log_lik, log_w) = jax.lax.scan(one_pass, None, jnp.arange(k // chunk))
        # (passes, B, chunk) -> (k, B)
        log_lik = log_lik.transpose(0, 2, 1).reshape(k, -1)
        log_w = log_w.transpose(0, 2, 1).reshape(k, -1)
        elbo = jnp.mean(log_lik, axis=0) - bounds.kl_standard_normal(mean, log_var)
        return elbo, bounds.importance_weighted_bound(log_w, axis=0)

    return jax.lax.map(one_batch, (batched(target), batched(inputs), batched(image_keys)))

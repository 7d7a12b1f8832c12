"""Periodic evaluation of a diffusion model: sample, then score with the digit metric.

Meant for a training loop, e.g. every few epochs with the EMA weights::

    result = evaluate_model(trainer.ema_model(model), metric, 1000, key)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from artifex.evaluation.digits import ACCEPTED_SIZES
from artifex.evaluation.quality import MNISTQualityMetric, QualityResult

#: Images generated per compiled sampling call in :func:`evaluate_model`.
DEFAULT_SAMPLE_BATCH = 250


def evaluate_model(
    model: Any,
    metric: MNISTQualityMetric,
    num_samples: int,
    key: jax.Array,
    *,
    scheduler: str = "ddim",
    steps: int | None = 50,
    eta: float | None = None,
    guidance_scale: float = 0.0,
    batch_size: int = DEFAULT_SAMPLE_BATCH,
) -> QualityResult:
    """Sample ``num_samples`` digits from ``model`` and score them with ``metric``.

    A class-conditional model (``model.num_classes`` set) is asked for every digit in turn
    (labels ``0, 1, ..., 9, 0, 1, ...``), so the samples are balanced like the reference,
    and the result carries the conditional accuracy.

    Sampling runs in equal batches of ``min(batch_size, num_samples)`` images, so the
    sampler compiles once; the surplus of the last batch is dropped. Batch ``i`` uses the
    ``i``-th key of ``jax.random.split(key, num_batches)``: the result depends only on the
    weights, ``key`` and the arguments. Samples are clipped to [-1, 1] before scoring
    (models with ``clip_denoised=False`` can overshoot slightly).

    Args:
      model: a ``DDPMModel`` (anything with ``config.input_shape`` and ``sample``) whose
        images are (28, 28, 1) or (32, 32, 1) digits in [-1, 1].
      metric: the loaded metric, e.g. ``MNISTQualityMetric.load()``.
      num_samples: images to generate, at least ``metric.min_samples``.
      key: PRNG key of the sampling noise.
      scheduler: the sampler, passed to ``model.sample`` (``"ddim"`` or ``"ddpm"``).
      steps: sampling steps, passed to ``model.sample``.
      eta: DDIM's noise scale, passed to ``model.sample`` (only for ``"ddim"``).
      guidance_scale: classifier-free guidance weight of a class-conditional model.
      batch_size: images per sampling call (bounds memory).

    Raises:
      ValueError: too few samples, a bad batch size, or images the metric cannot score.
    """
    _check_counts(metric, num_samples, batch_size)
    shape = tuple(model.config.input_shape)
    if shape not in [(s, s, 1) for s in ACCEPTED_SIZES]:
        raise ValueError(
            f"model.config.input_shape={shape} cannot be scored: the MNIST metric takes "
            f"single-channel digits of {' or '.join(f'{s}x{s}' for s in ACCEPTED_SIZES)}"
        )
    options = {"scheduler": scheduler, "steps": steps}
    if eta is not None:
        options["eta"] = eta
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None:
        if guidance_scale:
            raise ValueError(
                f"guidance_scale={guidance_scale} needs a class-conditional model "
                "(UNetBackboneConfig(num_classes=...)); this one is unconditional"
            )
        return evaluate_generator(
            lambda n, k: model.sample(n, key=k, **options),
            metric,
            num_samples,
            key,
            batch_size=batch_size,
        )
    return evaluate_generator(
        lambda n, k, y: model.sample(n, key=k, labels=y, guidance_scale=guidance_scale, **options),
        metric,
        num_samples,
        key,
        batch_size=batch_size,
        labels=np.arange(num_samples) % num_classes,
    )


def evaluate_generator(
    generate: Callable[[int, jax.Array], Any],
    metric: MNISTQualityMetric,
    num_samples: int,
    key: jax.Array,
    *,
    batch_size: int = DEFAULT_SAMPLE_BATCH,
    labels: Any = None,
) -> QualityResult:
    """Score ``num_samples`` images of any generator: ``generate(n, key)`` returns ``n`` digits
    in [-1, 1] (NHWC, 28x28 or 32x32, one channel), e.g.
    ``lambda n, k: trainer.generate(state, n, k)`` for any family's trainer.

    With ``labels`` (``(num_samples,)`` digits) the generator is conditional,
    ``generate(n, key, labels)``, called with each batch's slice of them, and the result
    carries the conditional accuracy. Batches, keys and clipping are as in
    :func:`evaluate_model`.
    """
    _check_counts(metric, num_samples, batch_size)
    batch = min(batch_size, num_samples)
    count = math.ceil(num_samples / batch)
    keys = jax.random.split(key, count)
    if labels is None:
        images = [np.asarray(generate(batch, k)) for k in keys]
    else:
        labels = np.asarray(labels)
        if labels.shape != (num_samples,):
            raise ValueError(
                f"labels has shape {labels.shape}; pass one label per sample, ({num_samples},)"
            )
        # The last batch is topped up with the first labels: every call has the same shape.
        padded = np.resize(labels, count * batch).astype(np.int32)
        images = [
            np.asarray(generate(batch, k, padded[i * batch : (i + 1) * batch]))
            for i, k in enumerate(keys)
        ]
    samples = np.clip(np.concatenate(images)[:num_samples], -1.0, 1.0)
    return metric.score(samples, labels=labels)


def _check_counts(metric: MNISTQualityMetric, num_samples: Any, batch_size: Any) -> None:
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, int)
        or (num_samples < metric.min_samples)
    ):
        raise ValueError(
            f"num_samples={num_samples!r} is too few; the metric needs at least "
            f"{metric.min_samples} (1,000 or more for comparable FID values)"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1")

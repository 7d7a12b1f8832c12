"""Sample quality of generated MNIST digits: FID, KID, inception score, class histogram.

Features come from a small digit classifier trained on real MNIST digits and shipped with
the package (``weights/mnist_classifier.npz``; regenerate with
``python scripts/train_classifier.py``). Nothing here imports TensorFlow, and
importing this package loads nothing heavy: JAX and Flax load on first use of a name below.

- :class:`MNISTQualityMetric` - ``MNISTQualityMetric.load().score(images)``.
- :class:`QualityResult` - the frozen result: fid, kid, kid_se, inception_score, ...
- :func:`evaluate_model` - sample from a diffusion model and score the samples.
- :func:`evaluate_generator` - score any family's samples (``generate(n, key)``).
- :class:`MNISTClassifier` - the feature network (``features(x)``: penultimate layer).
- :mod:`~artifex.evaluation.statistics` - FID, KID and inception score on arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from artifex._lazy import lazy_exports

_EXPORTS = {
    "MNISTClassifier": "classifier",
    "MIN_SAMPLES": "quality",
    "MNISTQualityMetric": "quality",
    "QualityResult": "quality",
    "evaluate_generator": "model_evaluation",
    "evaluate_model": "model_evaluation",
    "WeightsError": "weights",
    "DEFAULT_WEIGHTS_PATH": "weights",
}

__all__ = [
    "DEFAULT_WEIGHTS_PATH",
    "MIN_SAMPLES",
    "MNISTClassifier",
    "MNISTQualityMetric",
    "QualityResult",
    "WeightsError",
    "evaluate_generator",
    "evaluate_model",
]

if TYPE_CHECKING:
    from artifex.evaluation.classifier import MNISTClassifier
    from artifex.evaluation.model_evaluation import evaluate_generator, evaluate_model
    from artifex.evaluation.quality import MIN_SAMPLES, MNISTQualityMetric, QualityResult
    from artifex.evaluation.weights import DEFAULT_WEIGHTS_PATH, WeightsError


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _EXPORTS.items()})

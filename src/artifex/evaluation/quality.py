"""MNISTQualityMetric: FID, KID, classifier inception score and class histogram of digits.

Features come from the packaged digit classifier (see ``classifier``), never from a
randomly initialised network: loading fails loudly if the weights file is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artifex.evaluation import statistics as st
from artifex.evaluation.classifier import EXTRACT_BATCH, MNISTClassifier, extract
from artifex.evaluation.digits import to_classifier_input
from artifex.evaluation.weights import ReferenceStatistics, load_weights

#: Fewest images :meth:`MNISTQualityMetric.score` accepts. FID is biased upwards at small
#: N (its covariance estimate is noisy); compare FIDs only at equal N, ideally >= 1,000.
MIN_SAMPLES = 100
#: Disjoint subsets KID is averaged over (its standard error comes from their spread).
KID_SUBSETS = 10


@dataclass(frozen=True)
class QualityResult:
    """Scores of one set of images against the real-digit reference.

    Attributes:
      fid: Fréchet distance of the classifier features (0 = same Gaussian moments).
      kid: unbiased KID estimate (~0 for real digits; can be slightly negative).
      kid_se: standard error of ``kid`` over its disjoint subsets.
      inception_score: classifier inception score, in [1, 10].
      class_histogram: images predicted as each digit 0..9 (mode collapse shows here).
      num_samples: images scored.
      conditional_accuracy: for images generated for given labels, the share the
        classifier assigns to the requested label (``None`` when no labels were given).
        The classifier's own held-out accuracy (``MNISTQualityMetric.test_accuracy``,
        98.1 %) is the ceiling real digits reach.
    """

    fid: float
    kid: float
    kid_se: float
    inception_score: float
    class_histogram: tuple[int, ...]
    num_samples: int
    conditional_accuracy: float | None = None

    @property
    def class_fractions(self) -> tuple[float, ...]:
        """``class_histogram`` divided by ``num_samples`` (0.1 each for balanced digits)."""
        return tuple(c / self.num_samples for c in self.class_histogram)

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python values, ready for JSON or a logger."""
        return {
            "fid": self.fid,
            "kid": self.kid,
            "kid_se": self.kid_se,
            "inception_score": self.inception_score,
            "class_histogram": list(self.class_histogram),
            "num_samples": self.num_samples,
            "conditional_accuracy": self.conditional_accuracy,
        }

    def __str__(self) -> str:
        classes = " ".join(f"{d}:{c}" for d, c in enumerate(self.class_histogram))
        accuracy = (
            ""
            if self.conditional_accuracy is None
            else f" | conditional accuracy {self.conditional_accuracy:.1%}"
        )
        return (
            f"FID {self.fid:.2f} | KID {self.kid:.4f} ± {self.kid_se:.4f} | "
            f"IS {self.inception_score:.2f}{accuracy} | N {self.num_samples} | classes {classes}"
        )


class MNISTQualityMetric:
    """Scores generated MNIST digits against the real train digits.

    Use :meth:`load` for the packaged classifier::

        metric = MNISTQualityMetric.load()
        print(metric.score(images))  # images: (N, 32, 32, 1) or (N, 28, 28, 1) in [-1, 1]

    Args:
      classifier: the trained feature network.
      reference: feature statistics of the real digits the images are compared with.
      test_accuracy: the classifier's held-out accuracy, for the record.
    """

    min_samples = MIN_SAMPLES

    def __init__(
        self,
        classifier: MNISTClassifier,
        reference: ReferenceStatistics,
        *,
        test_accuracy: float | None = None,
    ):
        self.classifier = classifier
        self.reference = reference
        self.test_accuracy = test_accuracy

    @classmethod
    def load(cls, path: str | Path | None = None) -> MNISTQualityMetric:
        """The metric with the packaged weights (or those at ``path``).

        Raises:
          WeightsError: missing or unreadable file; the message says how to regenerate it.
        """
        classifier, reference, accuracy = load_weights(path)
        return cls(classifier, reference, test_accuracy=accuracy)

    def predict(
        self, images: Any, *, batch_size: int = EXTRACT_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, 64) and class probabilities (N, 10) of any accepted images."""
        x = to_classifier_input(images)
        return extract(self.classifier, x, batch_size)

    def score(
        self, images: Any, *, labels: Any = None, batch_size: int = EXTRACT_BATCH
    ) -> QualityResult:
        """FID, KID, inception score and class histogram of ``images`` against the reference;
        with ``labels``, also the conditional accuracy.

        Args:
          images: (N, 32, 32, 1), (N, 28, 28, 1) or the same without the channel axis; float
            values in [-1, 1]; N >= :data:`MIN_SAMPLES`.
          labels: the digit each image was generated for, ``(N,)`` integers in 0..9.
          batch_size: images per compiled feature-extraction call.

        Raises:
          ValueError: wrong shape or dtype, values outside [-1, 1], too few images, or
            labels that are not one digit per image.
        """
        x = to_classifier_input(images, minimum=self.min_samples)
        if labels is not None:
            labels = np.asarray(labels)
            if (
                labels.shape != (x.shape[0],)
                or not np.issubdtype(labels.dtype, np.integer)
                or labels.min() < 0
                or labels.max() > 9
            ):
                raise ValueError(
                    f"labels must be {x.shape[0]} integer digits in 0..9, one per image; got "
                    f"shape {labels.shape}, dtype {labels.dtype}"
                )
        features, probs = extract(self.classifier, x, batch_size)
        kid_mean, kid_se = st.kid(features, self.reference.features, num_subsets=KID_SUBSETS)
        mean, cov = st.gaussian_moments(features)
        histogram = st.class_histogram(probs)
        return QualityResult(
            fid=st.frechet_distance(mean, cov, self.reference.mean, self.reference.cov),
            kid=kid_mean,
            kid_se=kid_se,
            inception_score=st.inception_score(probs),
            class_histogram=tuple(int(c) for c in histogram),
            num_samples=int(x.shape[0]),
            conditional_accuracy=(
                None if labels is None else float(np.mean(np.argmax(probs, axis=1) == labels))
            ),
        )

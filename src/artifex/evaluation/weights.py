"""The committed classifier weights and reference statistics: one ``.npz`` file.

Keys: ``state/<path>`` for every classifier variable (e.g. ``state/convs/0/kernel``, and
the fixed feature standardisation ``state/feature_mean``, ``state/feature_std``),
``ref_mean`` / ``ref_cov`` (float64 mean and covariance of the features of the 4,000 train
digits), ``ref_features`` (those features, float16, for KID), ``test_accuracy`` (held-out
accuracy measured when the file was written) and ``format_version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artifex import _packaged_weights as packaged
from artifex.evaluation.classifier import FEATURE_DIM, MNISTClassifier, new_classifier

FORMAT_VERSION = 1
#: Where the packaged file lives.
DEFAULT_WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "mnist_classifier.npz"
REGENERATE = "regenerate it with: python scripts/train_classifier.py (in a clone of the repository)"


class WeightsError(RuntimeError):
    """The weights file is missing, unreadable or does not match the classifier."""


@dataclass(frozen=True, eq=False)
class ReferenceStatistics:
    """Features of the real train digits: Gaussian moments (FID) and the samples (KID)."""

    mean: np.ndarray
    cov: np.ndarray
    features: np.ndarray


def save_weights(
    path: str | Path,
    model: MNISTClassifier,
    reference: ReferenceStatistics,
    *,
    test_accuracy: float,
) -> Path:
    """Write ``model``'s variables and the reference statistics to ``path`` (compressed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        **packaged.state_arrays(model),
        ref_mean=np.asarray(reference.mean, np.float64),
        ref_cov=np.asarray(reference.cov, np.float64),
        ref_features=np.asarray(reference.features, np.float16),
        test_accuracy=np.float64(test_accuracy),
        format_version=np.int64(FORMAT_VERSION),
    )
    return path


def load_weights(
    path: str | Path | None = None,
) -> tuple[MNISTClassifier, ReferenceStatistics, float]:
    """The classifier, reference statistics and recorded held-out accuracy from ``path``.

    Raises:
      WeightsError: the file is missing, corrupt, or its contents do not fit the classifier;
        the message says how to regenerate it.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS_PATH
    try:
        data = packaged.read_npz(path, "classifier weights", REGENERATE)
    except (FileNotFoundError, RuntimeError) as error:
        raise WeightsError(str(error)) from error

    model = new_classifier()
    problems = [
        k for k in ("ref_mean", "ref_cov", "ref_features", "format_version") if k not in data
    ]
    problems += packaged.mismatched(model, data)
    if not problems and int(data["format_version"]) != FORMAT_VERSION:
        problems.append(f"format_version {int(data['format_version'])} != {FORMAT_VERSION}")
    if not problems and (
        data["ref_mean"].shape != (FEATURE_DIM,)
        or data["ref_cov"].shape != (FEATURE_DIM, FEATURE_DIM)
        or data["ref_features"].ndim != 2
        or data["ref_features"].shape[1] != FEATURE_DIM
    ):
        problems.append("reference statistics have the wrong feature dimension")
    if problems:
        raise WeightsError(
            f"classifier weights {path} do not match the classifier: {', '.join(problems)}; "
            f"{REGENERATE}"
        )

    packaged.load_into(model, data)
    reference = ReferenceStatistics(
        mean=data["ref_mean"].astype(np.float64),
        cov=data["ref_cov"].astype(np.float64),
        features=data["ref_features"].astype(np.float64),
    )
    accuracy = float(data["test_accuracy"]) if "test_accuracy" in data else float("nan")
    return model, reference, accuracy


def reference_statistics(features: np.ndarray) -> ReferenceStatistics:
    """Mean and (unbiased) covariance of ``features`` in float64, and the features."""
    f = np.asarray(features, np.float64)
    return ReferenceStatistics(mean=f.mean(axis=0), cov=np.cov(f, rowvar=False), features=f)

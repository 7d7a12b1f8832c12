"""Shared, session-scoped pieces of the metric tests: the packaged metric and real digits.

Everything is computed once: loading the classifier, its compiled feature extraction
(one program for the default batch) and the features of the 1,000 held-out digits.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def metric():
    from artifex.evaluation import MNISTQualityMetric

    return MNISTQualityMetric.load()


@pytest.fixture(scope="session")
def test_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,000 held-out digits, float32 (N, 28, 28, 1) in [-1, 1], and their labels."""
    from artifex.evaluation.digits import load_digits

    return load_digits("test")


@pytest.fixture(scope="session")
def train_digits() -> tuple[np.ndarray, np.ndarray]:
    from artifex.evaluation.digits import load_digits

    return load_digits("train")


@pytest.fixture(scope="session")
def real_result(metric, test_digits):
    """Score of the held-out digits: the level every corruption must be worse than."""
    return metric.score(test_digits[0])

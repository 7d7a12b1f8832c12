r"""Sample-quality statistics on classifier features and class probabilities (NumPy, float64).

**FID** (Fréchet distance between Gaussians fitted to two feature sets):

.. math::

    \mathrm{FID} = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Sigma_1
    + \operatorname{tr}\Sigma_2 - 2 \operatorname{tr}\big(\Sigma_1^{1/2}\Sigma_2
    \Sigma_1^{1/2}\big)^{1/2}.

:math:`\operatorname{tr}(\Sigma_1\Sigma_2)^{1/2}` equals the trace term because
:math:`\Sigma_1\Sigma_2` is similar to the symmetric PSD matrix
:math:`\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}`; using the symmetric form, both square roots
come from symmetric eigen-decompositions, with round-off negative eigenvalues clamped to
0, so singular covariances (fewer samples than features, dead units) are fine.

**KID** (kernel inception distance): the unbiased estimate of the squared MMD with the
cubic polynomial kernel :math:`k(x, y) = (x^\top y / d + 1)^3`,

.. math::

    \widehat{\mathrm{MMD}}^2 = \frac{\sum_{i \ne j} k(x_i, x_j)}{m(m-1)}
    + \frac{\sum_{i \ne j} k(y_i, y_j)}{n(n-1)} - \frac{2 \sum_{i,j} k(x_i, y_j)}{mn},

averaged over disjoint subsets so that the spread of the subset values gives an honest
standard error. Unbiased, so it is ~0 (and may be negative) for two samples of one
distribution at any sample size, unlike FID, whose bias grows as the sample shrinks.

**Classifier inception score**: :math:`\exp\big(\mathbb{E}_x \mathrm{KL}(p(y|x) \,\|\,
p(y))\big)` with :math:`p(y) = \mathbb{E}_x p(y|x)`: 10 for confident predictions spread
evenly over 10 classes, 1 when every image gets the same prediction.
"""

from __future__ import annotations

import numpy as np


def gaussian_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (rows are samples) in float64."""
    f = np.asarray(features, np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; negative eigenvalues clamped to 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mean1, cov1) and N(mean2, cov2)."""
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mean1 - mean2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets (rows are samples)."""
    return frechet_distance(*gaussian_moments(features1), *gaussian_moments(features2))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gram matrix of ``k(x, y) = (x . y / d + 1) ** 3``."""
    return (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD between samples ``x`` (m, d) and ``y`` (n, d), m, n >= 2."""
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"mmd2_unbiased needs at least 2 samples per set, got {m} and {n}")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def kid(
    features: np.ndarray,
    reference: np.ndarray,
    *,
    num_subsets: int = 10,
    seed: int = 0,
) -> tuple[float, float]:
    """KID of ``features`` against ``reference``: (mean, standard error) over subsets.

    Both sets are shuffled (``seed``) and cut into ``num_subsets`` disjoint, equal parts;
    part ``i`` of one is compared with part ``i`` of the other. The parts are independent,
    so ``std / sqrt(num_subsets)`` of the part values is the standard error of their mean.
    Every part needs at least 2 samples of each set.
    """
    x, y = np.asarray(features, np.float64), np.asarray(reference, np.float64)
    if num_subsets < 2:
        raise ValueError(f"num_subsets={num_subsets} must be >= 2 to estimate an error")
    size_x, size_y = x.shape[0] // num_subsets, y.shape[0] // num_subsets
    if size_x < 2 or size_y < 2:
        raise ValueError(
            f"kid with num_subsets={num_subsets} needs at least {2 * num_subsets} samples per "
            f"set, got {x.shape[0]} and {y.shape[0]}"
        )
    rng = np.random.default_rng(seed)
    x, y = x[rng.permutation(x.shape[0])], y[rng.permutation(y.shape[0])]
    values = np.array(
        [
            mmd2_unbiased(x[i * size_x : (i + 1) * size_x], y[i * size_y : (i + 1) * size_y])
            for i in range(num_subsets)
        ]
    )
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(num_subsets))


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` for class probabilities ``probs`` (N, classes)."""
    p = np.asarray(probs, np.float64)
    marginal = p.mean(axis=0, keepdims=True)
    kl = (p * (np.log(p + eps) - np.log(marginal + eps))).sum(axis=1)
    return float(np.exp(kl.mean()))


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """How many images are predicted as each class (argmax), as an int array (classes,)."""
    p = np.asarray(probs)
    return np.bincount(p.argmax(axis=1), minlength=p.shape[1]).astype(np.int64)

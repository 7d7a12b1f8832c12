"""FID, KID and inception score against closed forms and direct reference computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from artifex.evaluation import statistics as st


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_commuting_covariances_matches_closed_form() -> None:
    # Diagonal covariances: FID = |mu1 - mu2|^2 + sum_i (s1_i - s2_i)^2 (s = std devs).
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    got = st.frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_non_commuting_covariances_matches_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    d = 12
    c1, c2 = random_spd(rng, d), random_spd(rng, d)
    assert not np.allclose(c1 @ c2, c2 @ c1)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    cross = scipy.linalg.sqrtm(c1 @ c2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * cross)
    assert st.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-9)
    assert st.frechet_distance(mu2, c2, mu1, c1) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_handles_singular_covariances_and_identity() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 8))  # 5 samples in 8 dims: rank-4 covariance
    mean, cov = st.gaussian_moments(x)
    assert np.linalg.matrix_rank(cov) == 4
    assert st.frechet_distance(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-9)
    assert np.isfinite(st.fid(x, rng.standard_normal((7, 8))))


def kid_direct(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with (x.y/d + 1)^3, written as explicit sums over index pairs."""
    d = x.shape[1]

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_unbiased_matches_direct_pair_sums() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((13, 5)), rng.standard_normal((9, 5)) + 0.5
    assert st.mmd2_unbiased(x, y) == pytest.approx(kid_direct(x, y), rel=1e-10)


def test_kid_averages_disjoint_subsets_of_shuffled_sets() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((40, 4)), rng.standard_normal((60, 4)) + 0.3
    mean, se = st.kid(x, y, num_subsets=4, seed=7)
    perm = np.random.default_rng(7)
    xs, ys = x[perm.permutation(40)], y[perm.permutation(60)]
    parts = [kid_direct(xs[i * 10 : (i + 1) * 10], ys[i * 15 : (i + 1) * 15]) for i in range(4)]
    assert mean == pytest.approx(np.mean(parts), rel=1e-10)
    assert se == pytest.approx(np.std(parts, ddof=1) / 2, rel=1e-10)


def test_kid_is_zero_within_its_error_for_one_distribution_and_positive_across() -> None:
    rng = np.random.default_rng(4)
    same_mean, same_se = st.kid(rng.standard_normal((500, 16)), rng.standard_normal((2000, 16)))
    assert abs(same_mean) < 3 * same_se
    shifted, shifted_se = st.kid(
        rng.standard_normal((500, 16)) + 0.5, rng.standard_normal((2000, 16))
    )
    assert shifted > 10 * shifted_se


def test_kid_rejects_too_few_samples() -> None:
    with pytest.raises(ValueError, match="at least 20 samples"):
        st.kid(np.zeros((15, 3)), np.zeros((100, 3)), num_subsets=10)


def test_inception_score_closed_forms() -> None:
    confident_balanced = np.eye(10)[np.arange(1000) % 10]
    assert st.inception_score(confident_balanced) == pytest.approx(10.0, rel=1e-9)
    one_class = np.eye(10)[np.full(100, 3)]
    assert st.inception_score(one_class) == pytest.approx(1.0, rel=1e-9)
    uncertain = np.full((50, 10), 0.1)
    assert st.inception_score(uncertain) == pytest.approx(1.0, rel=1e-9)
    # Two classes, confident, half each: IS = exp(log 2) = 2.
    assert st.inception_score(np.eye(10)[np.arange(100) % 2]) == pytest.approx(2.0, rel=1e-9)


def test_class_histogram_counts_argmax_predictions() -> None:
    probs = np.eye(10)[[1, 1, 7, 0, 1]] * 0.8 + 0.02
    assert st.class_histogram(probs).tolist() == [1, 3, 0, 0, 0, 0, 0, 1, 0, 0]

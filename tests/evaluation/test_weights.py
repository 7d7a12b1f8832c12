"""The committed weights file: packaged, small, loadable, and consistent with the code."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from artifex.evaluation import DEFAULT_WEIGHTS_PATH, MNISTQualityMetric, WeightsError
from artifex.evaluation.classifier import FEATURE_DIM, extract, fit_feature_standardization
from artifex.evaluation.digits import to_classifier_input
from artifex.evaluation.weights import load_weights, save_weights

REGENERATE = "python scripts/train_classifier.py"


def test_weights_ship_inside_the_package_and_are_small() -> None:
    packaged = resources.files("artifex.evaluation") / "weights" / "mnist_classifier.npz"
    assert packaged.is_file()
    assert DEFAULT_WEIGHTS_PATH.stat().st_size < 2_000_000


def test_training_definitions_reproduce_the_stored_reference(metric, train_digits) -> None:
    """Features of the train digits, recomputed now, give the stored statistics."""
    images = to_classifier_input(train_digits[0])
    ref = metric.reference
    stored_mean = np.asarray(metric.classifier.feature_mean[...])
    stored_std = np.asarray(metric.classifier.feature_std[...])
    # The script's standardisation step, re-run on the loaded classifier, is a fixed point.
    fit_feature_standardization(metric.classifier, images)
    np.testing.assert_allclose(metric.classifier.feature_mean[...], stored_mean, atol=1e-4)
    np.testing.assert_allclose(metric.classifier.feature_std[...], stored_std, rtol=1e-4)
    features, _ = extract(metric.classifier, images)
    assert features.shape == ref.features.shape == (4000, FEATURE_DIM)
    np.testing.assert_allclose(features, ref.features, atol=2e-2, rtol=2e-3)  # stored float16
    np.testing.assert_allclose(features.mean(axis=0), ref.mean, atol=1e-4)
    np.testing.assert_allclose(np.cov(features, rowvar=False), ref.cov, atol=1e-4)
    # Standardised on these very digits: zero mean, unit variance per unit.
    np.testing.assert_allclose(ref.mean, 0.0, atol=1e-4)
    np.testing.assert_allclose(np.diag(ref.cov), 4000 / 3999, rtol=1e-3)


def test_missing_file_says_how_to_regenerate(tmp_path) -> None:
    with pytest.raises(WeightsError, match=f"not found.*{REGENERATE}"):
        MNISTQualityMetric.load(tmp_path / "absent.npz")


def test_corrupt_file_says_how_to_regenerate(tmp_path) -> None:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(DEFAULT_WEIGHTS_PATH.read_bytes()[:5000])
    with pytest.raises(WeightsError, match=f"cannot read.*{REGENERATE}"):
        MNISTQualityMetric.load(path)


def test_file_with_missing_or_misshaped_arrays_is_rejected(tmp_path) -> None:
    with np.load(DEFAULT_WEIGHTS_PATH) as archive:
        data = dict(archive)
    data["state/dense/kernel"] = data["state/dense/kernel"][:, :10]
    del data["ref_cov"]
    path = tmp_path / "bad.npz"
    np.savez(path, **data)
    with pytest.raises(WeightsError, match=f"ref_cov.*state/dense/kernel.*{REGENERATE}"):
        MNISTQualityMetric.load(path)


def test_save_then_load_round_trips(metric, tmp_path) -> None:
    path = save_weights(
        tmp_path / "copy.npz", metric.classifier, metric.reference, test_accuracy=0.5
    )
    model, reference, accuracy = load_weights(path)
    assert accuracy == 0.5
    np.testing.assert_array_equal(model.dense.kernel[...], metric.classifier.dense.kernel[...])
    np.testing.assert_array_equal(model.feature_std[...], metric.classifier.feature_std[...])
    np.testing.assert_array_equal(reference.cov, metric.reference.cov)

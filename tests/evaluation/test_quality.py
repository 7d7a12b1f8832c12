"""The packaged metric on real digits and on known degradations of them.

Figures are for the 1,000 held-out digits against the train-digit reference; each
degraded set is those same digits degraded, so differences come from the degradation.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from artifex.evaluation import MIN_SAMPLES, QualityResult

_SPEC = importlib.util.spec_from_file_location(
    "corruptions", Path(__file__).resolve().parents[2] / "benchmarks" / "corruptions.py"
)
corruptions = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(corruptions)

c = corruptions


def test_classifier_held_out_accuracy(metric, test_digits) -> None:
    images, labels = test_digits
    _, probs = metric.predict(images)
    accuracy = float(np.mean(probs.argmax(axis=1) == labels))
    assert accuracy >= 0.96
    assert accuracy == pytest.approx(metric.test_accuracy, abs=1e-9)


def test_real_digits_score_close_to_the_reference(real_result: QualityResult) -> None:
    assert real_result.num_samples == 1000
    assert real_result.fid < 2.0
    assert abs(real_result.kid) < 3 * real_result.kid_se
    assert 8.5 < real_result.inception_score <= 10.0
    assert all(80 <= n <= 120 for n in real_result.class_histogram)  # 100 per class


@pytest.fixture(scope="module")
def scores(metric, test_digits) -> dict[str, QualityResult]:
    images, labels = test_digits
    sets = {f"blur {s}": c.gaussian_blur(images, s) for s in (0.5, 1.0, 2.0)}
    sets |= {f"noise {s}": c.add_gaussian_noise(images, s) for s in (0.1, 0.3, 1.0)}
    sets["occlusion"] = c.occlude_center(images)
    sets["single class"] = images[labels == 3]  # 100 threes
    # FID's bias depends on N: the single class is compared with 100 random real digits.
    sets["real 100"] = images[np.random.default_rng(0).permutation(len(images))[:100]]
    return {name: metric.score(x) for name, x in sets.items()}


@pytest.mark.parametrize("name", ["blur 1.0", "noise 0.3", "occlusion", "single class"])
def test_every_corruption_is_clearly_worse_than_real(scores, real_result, name) -> None:
    result = scores[name]
    real = scores["real 100"] if name == "single class" else real_result
    assert result.num_samples == real.num_samples
    assert result.fid > 3 * real.fid
    assert result.kid > 3 * result.kid_se  # significantly above 0, where real digits are


def test_severities_are_ordered(scores, real_result) -> None:
    blur = [scores[f"blur {s}"].fid for s in (0.5, 1.0, 2.0)]
    noise = [scores[f"noise {s}"].fid for s in (0.1, 0.3, 1.0)]
    assert real_result.fid < blur[0] < blur[1] < blur[2]
    assert noise[0] < noise[1] < noise[2]
    assert [scores[f"blur {s}"].kid for s in (0.5, 1.0, 2.0)] == sorted(
        scores[f"blur {s}"].kid for s in (0.5, 1.0, 2.0)
    )


def test_single_class_shows_as_mode_collapse(scores, real_result) -> None:
    collapsed = scores["single class"]
    assert collapsed.inception_score < 1.5
    assert max(collapsed.class_fractions) > 0.9
    assert collapsed.class_histogram.index(max(collapsed.class_histogram)) == 3
    assert max(real_result.class_fractions) < 0.15


def test_28_and_32_pixel_digits_with_or_without_channel_score_the_same(metric, test_digits):
    images = test_digits[0][:MIN_SAMPLES]
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
    results = [metric.score(x) for x in (images, padded, images[..., 0], padded[..., 0])]
    assert all(r == results[0] for r in results[1:])


def test_result_is_frozen_and_serialisable(real_result: QualityResult) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        real_result.fid = 0.0  # type: ignore[misc]
    record = json.loads(json.dumps(real_result.as_dict()))
    assert record["num_samples"] == 1000 and sum(record["class_histogram"]) == 1000
    text = str(real_result)
    assert text.startswith(f"FID {real_result.fid:.2f} | KID ") and "N 1000" in text


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (
            np.zeros((MIN_SAMPLES - 1, 32, 32, 1), np.float32),
            f"N={MIN_SAMPLES - 1} images; at least {MIN_SAMPLES}",
        ),
        (np.zeros((MIN_SAMPLES, 16, 16, 1), np.float32), r"shape \(100, 16, 16, 1\)"),
        (np.zeros((MIN_SAMPLES, 28, 28, 3), np.float32), "single-channel"),
        (np.zeros((MIN_SAMPLES, 28, 28, 1), np.uint8), r"dtype uint8.*127\.5"),
        (np.full((MIN_SAMPLES, 28, 28, 1), 255.0, np.float32), r"\[0, 255\].*127\.5"),
        (np.full((MIN_SAMPLES, 28, 28, 1), 1.2, np.float32), r"np\.clip"),
        (np.full((MIN_SAMPLES, 28, 28, 1), np.nan, np.float32), "NaN"),
    ],
)
def test_invalid_images_are_rejected_with_a_fix(metric, images, message) -> None:
    with pytest.raises(ValueError, match=message):
        metric.score(images)

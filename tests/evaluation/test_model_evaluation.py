"""evaluate_model: batched sampling from a diffusion model, then scoring."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import numpy as np
import pytest
from flax import nnx

from artifex.evaluation import MIN_SAMPLES, evaluate_model
from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
from artifex.generative_models.core.configuration.diffusion_config import (
    DDPMConfig,
    NoiseScheduleConfig,
)
from artifex.generative_models.models.diffusion.ddpm import DDPMModel


class DigitModel:
    """Stands in for a DDPMModel: 'samples' real digits picked by the key, records calls."""

    def __init__(self, digits: np.ndarray, size: int):
        pad = (size - 28) // 2
        self.digits = np.pad(digits, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-1)
        self.config = SimpleNamespace(input_shape=(size, size, 1))
        self.calls: list[dict] = []

    def sample(self, n, *, key, **options):
        self.calls.append({"n": n, **options})
        rows = jax.random.choice(key, self.digits.shape[0], (n,), replace=False)
        return self.digits[np.asarray(rows)]


@pytest.mark.parametrize("size", [28, 32])
def test_samples_in_equal_batches_and_scores_exactly_num_samples(metric, test_digits, size):
    model = DigitModel(test_digits[0], size)
    key = jax.random.key(0)
    result = evaluate_model(model, metric, 230, key, steps=20, batch_size=100)
    assert [call["n"] for call in model.calls] == [100, 100, 100]
    assert model.calls[0] == {"n": 100, "scheduler": "ddim", "steps": 20}
    assert result.num_samples == 230
    # Same images as sampling by hand with the documented keys.
    by_hand = np.concatenate(
        [DigitModel(test_digits[0], size).sample(100, key=k) for k in jax.random.split(key, 3)]
    )[:230]
    assert result == metric.score(by_hand)
    assert result.fid < 10 and result.inception_score > 8


def test_rejects_unscorable_models_and_too_few_samples_before_sampling(metric, test_digits):
    model = DigitModel(test_digits[0], 32)
    model.config = SimpleNamespace(input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=r"input_shape=\(64, 64, 3\) cannot be scored"):
        evaluate_model(model, metric, 200, jax.random.key(0))
    with pytest.raises(ValueError, match=f"num_samples=10 is too few.*at least {MIN_SAMPLES}"):
        evaluate_model(model, metric, 10, jax.random.key(0))
    assert model.calls == []


def test_scores_a_real_ddpm_model(metric) -> None:
    backbone = UNetBackboneConfig(
        hidden_dims=(8, 16),
        in_channels=1,
        out_channels=1,
        time_embedding_dim=8,
        attention_resolutions=(),
        num_res_blocks=1,
    )
    schedule = NoiseScheduleConfig(schedule_type="cosine", num_timesteps=50)
    config = DDPMConfig(backbone=backbone, noise_schedule=schedule, input_shape=(28, 28, 1))
    model = DDPMModel(config, rngs=nnx.Rngs(0))
    result = evaluate_model(model, metric, MIN_SAMPLES, jax.random.key(1), steps=2)
    # An untrained network makes noise, not digits: far from the reference.
    assert result.num_samples == MIN_SAMPLES
    assert np.isfinite(result.fid) and result.fid > 10


def test_evaluate_generator_scores_any_family(metric, test_digits):
    """A plain ``generate(n, key)`` callable is batched and scored like a model's samples."""
    digits = test_digits[0]
    calls = []

    def generate(n, key):
        calls.append(n)
        rows = jax.random.choice(key, digits.shape[0], (n,), replace=False)
        return digits[np.asarray(rows)] * 2.0  # overshoots [-1, 1]: clipped before scoring

    from artifex.evaluation import evaluate_generator

    result = evaluate_generator(generate, metric, 150, jax.random.key(3), batch_size=100)
    assert calls == [100, 100]
    assert result.num_samples == 150
    assert result.fid < 20  # real digits, however sliced: far below an untrained model's
    with pytest.raises(ValueError, match="num_samples=10 is too few"):
        evaluate_generator(generate, metric, 10, jax.random.key(3))


def test_conditional_accuracy_is_the_share_classified_as_requested(metric, test_digits):
    """Real digits scored against their own labels reach the classifier's accuracy; against
    shifted labels almost none; both equal an independent argmax count."""
    digits, labels = test_digits[0][:300], test_digits[1][:300]
    true = metric.score(digits, labels=labels).conditional_accuracy
    probs = metric.predict(digits)[1]
    assert true == pytest.approx(np.mean(probs.argmax(axis=1) == labels))
    assert true > 0.95
    wrong = metric.score(digits, labels=(labels + 1) % 10).conditional_accuracy
    assert wrong == pytest.approx(np.mean(probs.argmax(axis=1) == (labels + 1) % 10))
    assert wrong < 0.05
    assert metric.score(digits).conditional_accuracy is None
    with pytest.raises(ValueError, match="labels must be 300 integer digits"):
        metric.score(digits, labels=labels[:10])


def test_a_conditional_generator_gets_each_batch_its_labels(metric, test_digits):
    """``evaluate_generator(..., labels=...)`` hands every call its slice of the labels (the
    last batch topped up), and the accuracy counts the requested labels."""
    from artifex.evaluation import evaluate_generator

    digits, true_labels = test_digits
    by_class = [digits[true_labels == c] for c in range(10)]
    seen = []

    def generate(n, key, labels):
        seen.append(np.asarray(labels))
        return np.stack([by_class[c][i % len(by_class[c])] for i, c in enumerate(labels)])

    requested = np.arange(150) % 10
    result = evaluate_generator(
        generate, metric, 150, jax.random.key(0), batch_size=100, labels=requested
    )
    assert [len(s) for s in seen] == [100, 100]
    np.testing.assert_array_equal(np.concatenate(seen)[:150], requested)
    assert result.conditional_accuracy > 0.95


def test_evaluate_model_asks_a_conditional_model_for_every_digit(metric, test_digits):
    digits, true_labels = test_digits

    class ConditionalDigits(DigitModel):
        num_classes = 10

        def sample(self, n, *, key, labels, guidance_scale, **options):
            self.calls.append({"n": n, "labels": np.asarray(labels), "w": guidance_scale})
            return np.stack([self.digits[true_labels == c][0] for c in np.asarray(labels)])

    model = ConditionalDigits(digits, 32)
    result = evaluate_model(model, metric, 100, jax.random.key(0), guidance_scale=2.0)
    np.testing.assert_array_equal(model.calls[0]["labels"], np.arange(100) % 10)
    assert model.calls[0]["w"] == 2.0
    firsts = np.stack([digits[true_labels == c][0] for c in range(10)])
    correct = metric.predict(firsts)[1].argmax(axis=1) == np.arange(10)
    assert result.conditional_accuracy == pytest.approx(correct.mean())  # 10 of each digit
    with pytest.raises(ValueError, match="guidance_scale=2.0 needs a class-conditional model"):
        evaluate_model(DigitModel(digits, 32), metric, 100, jax.random.key(0), guidance_scale=2.0)

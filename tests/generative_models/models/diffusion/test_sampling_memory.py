"""The sampler's memory estimate against XLA's own figure, and the refusal it drives."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from artifex.generative_models.models.diffusion import sampling_memory
from artifex.generative_models.models.diffusion.ddpm import DDPMModel, _compiled_sample

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from benchmarks.common import build_config  # noqa: E402 - the tutorial's model presets


@pytest.mark.parametrize("preset", ["cpu", "tiny"])
def test_estimate_is_within_a_quarter_of_xla_temporary_memory(preset) -> None:
    config = build_config(preset)
    model = DDPMModel(config, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    shape = (32, *config.input_shape)
    compiled = _compiled_sample.lower(
        graphdef, state, jax.random.key(0), jnp.float32(0), None, None, None,
        shape=shape, scheduler="ddim", steps=3,
    ).compile()  # fmt: skip
    xla = compiled.memory_analysis().temp_size_in_bytes
    estimate = sampling_memory.sampling_bytes(config.backbone, shape)
    assert 0.75 * xla <= estimate <= 1.25 * xla


def test_a_batch_that_cannot_fit_is_refused_with_its_size_before_compiling(tiny_model) -> None:
    compiled = _compiled_sample._cache_size()
    with pytest.raises(MemoryError, match=r"sampling n=10,000,000,000 images at once needs about"):
        tiny_model.sample(10_000_000_000, key=0, scheduler="ddim", steps=2)
    assert _compiled_sample._cache_size() == compiled
    backbone, shape = tiny_model.config.backbone, (1000, *tiny_model.config.input_shape)
    need = sampling_memory.sampling_bytes(backbone, shape)
    sampling_memory.check_fits(backbone, shape, available=need)  # just fits
    with pytest.raises(MemoryError, match=r"batches of at most 499\b"):
        sampling_memory.check_fits(backbone, shape, available=need // 2 - 1)
    guided = sampling_memory.sampling_bytes(backbone, shape, guided=True)
    assert need < guided < 2 * need  # the doubled network batch, not the carried images

"""Pretrained model files: a round trip is exact, and a wrong or damaged file is named."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.core.configuration import (
    DDPMConfig,
    NoiseScheduleConfig,
    UNetBackboneConfig,
)
from artifex.generative_models.models.diffusion.ddpm import DDPMModel
from artifex.pretrained import load_pretrained, pretrained_record, save_pretrained

CONFIG = DDPMConfig(
    backbone=UNetBackboneConfig(
        hidden_dims=(8,), time_embedding_dim=8, num_res_blocks=1, num_classes=4
    ),
    noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=20),
    input_shape=(8, 8, 1),
)


def conditional(seed: int = 0) -> DDPMModel:
    return DDPMModel(CONFIG, rngs=nnx.Rngs(seed))


def test_round_trip_restores_every_parameter_and_the_config(tmp_path):
    model = conditional(seed=3)
    path = save_pretrained(tmp_path / "m.npz", model, record={"steps": 7})
    loaded = load_pretrained(path)
    assert loaded.config == model.config and loaded.num_classes == 4
    jax.tree.map(
        np.testing.assert_array_equal,
        nnx.state(model, nnx.Param),
        nnx.state(loaded, nnx.Param),
    )
    assert pretrained_record(path) == {"steps": 7}
    options = dict(key=0, scheduler="ddim", steps=3, labels=2, guidance_scale=1.0)
    np.testing.assert_array_equal(model.sample(2, **options), loaded.sample(2, **options))


def test_missing_foreign_and_mismatched_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrained model not found at .*train_demo_model"):
        load_pretrained(tmp_path / "absent.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(RuntimeError, match="is not a pretrained model file"):
        load_pretrained(tmp_path / "other.npz")
    path = save_pretrained(tmp_path / "m.npz", conditional(), record={})
    data = dict(np.load(path))
    key = next(k for k in data if k.endswith("kernel"))
    data[key] = data[key][..., :1]
    np.savez(tmp_path / "cut.npz", **data)
    with pytest.raises(RuntimeError, match=rf"does not fit its configuration: {key}"):
        load_pretrained(tmp_path / "cut.npz")

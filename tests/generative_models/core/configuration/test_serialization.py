"""DDPMConfig.to_dict / from_dict: a lossless, validated round trip through JSON."""

from __future__ import annotations

import json

import pytest

from artifex.generative_models.core.configuration import (
    DDPMConfig,
    NoiseScheduleConfig,
    UNetBackboneConfig,
)


def test_round_trip_through_json_restores_an_equal_config():
    config = DDPMConfig(
        backbone=UNetBackboneConfig(
            hidden_dims=(16, 32, 64),
            attention_resolutions=(8,),
            activation="gelu",
            time_embedding_dim=64,
            num_res_blocks=1,
        ),
        noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=500),
        loss_type="huber",
        prediction_type="v_prediction",
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["backbone"]["hidden_dims"] == [16, 32, 64]  # JSON has no tuples
    restored = DDPMConfig.from_dict(data)
    assert restored == config
    assert isinstance(restored.backbone.hidden_dims, tuple)
    assert hash(restored) == hash(config)  # still usable as a static jit argument


def test_from_dict_validates_and_names_unknown_fields():
    data = DDPMConfig().to_dict()
    with pytest.raises(ValueError, match=r"unknown field 'learning_rate'"):
        DDPMConfig.from_dict({**data, "learning_rate": 1e-4})
    data["noise_schedule"]["schedule_type"] = "exponential"
    with pytest.raises(ValueError, match="schedule_type"):
        DDPMConfig.from_dict(data)

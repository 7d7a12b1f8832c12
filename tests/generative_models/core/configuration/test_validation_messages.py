"""Every invalid config value raises a ValueError naming the field, the value and the fix."""

from __future__ import annotations

import pytest

from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
from artifex.generative_models.core.configuration.diffusion_config import (
    DDPMConfig,
    NoiseScheduleConfig,
)
from artifex.generative_models.training.trainers.diffusion_trainer import DiffusionTrainingConfig

BACKBONE_ERRORS = [
    ({"hidden_dims": ()}, "hidden_dims", "must not be empty"),
    ({"hidden_dims": (64, 0)}, "hidden_dims", ">= 1"),
    ({"hidden_dims": 64}, "hidden_dims", "sequence"),
    ({"channel_mult": (1, 2, 3)}, "channel_mult", "hidden_dims"),
    ({"activation": "swishy"}, "activation", "'gelu'"),
    ({"in_channels": 0}, "in_channels", ">= 1"),
    ({"out_channels": 1.5}, "out_channels", "integer"),
    ({"time_embedding_dim": 7}, "time_embedding_dim", "even"),
    ({"time_embedding_dim": 0}, "time_embedding_dim", ">= 2"),
    ({"attention_resolutions": (8, -1)}, "attention_resolutions", ">= 1"),
    ({"num_res_blocks": 0}, "num_res_blocks", ">= 1"),
    ({"num_res_blocks": True}, "num_res_blocks", "integer"),
    ({"dropout_rate": 1.0}, "dropout_rate", "[0.0, 1.0)"),
    ({"dropout_rate": -0.1}, "dropout_rate", "[0.0, 1.0)"),
]


@pytest.mark.parametrize(("kwargs", "field", "hint"), BACKBONE_ERRORS)
def test_backbone_rejects(kwargs, field, hint):
    base = {"hidden_dims": (64, 128, 256)}
    with pytest.raises(ValueError) as err:
        UNetBackboneConfig(**{**base, **kwargs})
    message = str(err.value)
    assert f"UNetBackboneConfig.{field}=" in message
    assert repr(next(iter(kwargs.values()))) in message or field == "channel_mult"
    assert hint in message


SCHEDULE_ERRORS = [
    ({"schedule_type": "exponential"}, "schedule_type", "'cosine'"),
    ({"num_timesteps": 1}, "num_timesteps", ">= 2"),
    ({"num_timesteps": 10.0}, "num_timesteps", "integer"),
    ({"beta_start": 0.0}, "beta_start", "(0.0, 1.0)"),
    ({"beta_end": 1.0}, "beta_end", "(0.0, 1.0)"),
    ({"beta_start": 0.02, "beta_end": 0.01}, "beta_end", "greater than beta_start"),
]


@pytest.mark.parametrize(("kwargs", "field", "hint"), SCHEDULE_ERRORS)
def test_schedule_rejects(kwargs, field, hint):
    with pytest.raises(ValueError) as err:
        NoiseScheduleConfig(**kwargs)
    assert f"NoiseScheduleConfig.{field}=" in str(err.value)
    assert hint in str(err.value)


def _ddpm(**kwargs):
    backbone = kwargs.pop("backbone", UNetBackboneConfig(hidden_dims=(8, 16, 32)))
    return DDPMConfig(backbone=backbone, **kwargs)


DDPM_ERRORS = [
    ({"input_shape": (32, 32)}, "input_shape", "(height, width, channels)"),
    ({"input_shape": (30, 32, 1)}, "input_shape", "divisible by 4"),
    ({"input_shape": (32, 32, 3)}, "backbone.in_channels", "input_shape[-1]=3"),
    (
        {"backbone": UNetBackboneConfig(hidden_dims=(8, 16), out_channels=2)},
        "backbone.out_channels",
        "input_shape[-1]=1",
    ),
    (
        {"backbone": UNetBackboneConfig(hidden_dims=(8, 16, 32), attention_resolutions=(16, 4))},
        "backbone.attention_resolutions",
        "(32, 16, 8)",
    ),
    ({"loss_type": "huberish"}, "loss_type", "'huber'"),
    ({"huber_delta": 0.0}, "huber_delta", "(0.0, inf)"),
    ({"prediction_type": "v"}, "prediction_type", "'v_prediction'"),
    ({"clip_denoised": 1}, "clip_denoised", "True or False"),
    ({"backbone": {"hidden_dims": (8,)}}, "backbone", "UNetBackboneConfig"),
]


@pytest.mark.parametrize(("kwargs", "field", "hint"), DDPM_ERRORS)
def test_ddpm_config_rejects(kwargs, field, hint):
    with pytest.raises(ValueError) as err:
        _ddpm(**kwargs)
    assert f"DDPMConfig.{field}=" in str(err.value)
    assert hint in str(err.value)


TRAINING_ERRORS = [
    ({"prediction_type": "noise"}, "prediction_type", "'epsilon'"),
    ({"timestep_sampling": "beta"}, "timestep_sampling", "'logit_normal'"),
    ({"logit_normal_std": 0.0}, "logit_normal_std", "(0.0, inf)"),
    ({"loss_weighting": "p2"}, "loss_weighting", "'min_snr'"),
    ({"min_snr_gamma": -1.0}, "min_snr_gamma", "(0.0, inf)"),
    ({"ema_decay": 1.0}, "ema_decay", "[0.0, 1.0)"),
    ({"ema_update_every": 0}, "ema_update_every", ">= 1"),
    ({"microbatch_size": 0}, "microbatch_size", ">= 1"),
]


@pytest.mark.parametrize(("kwargs", "field", "hint"), TRAINING_ERRORS)
def test_training_config_rejects(kwargs, field, hint):
    with pytest.raises(ValueError) as err:
        DiffusionTrainingConfig(**kwargs)
    assert f"DiffusionTrainingConfig.{field}=" in str(err.value)
    assert hint in str(err.value)


def test_public_api_configs_are_valid_and_hashable():
    backbone = UNetBackboneConfig(
        name="unet_backbone",
        hidden_dims=[64, 128, 256],
        activation="gelu",
        in_channels=1,
        out_channels=1,
        time_embedding_dim=128,
        attention_resolutions=[8],
        num_res_blocks=2,
        channel_mult=(1, 2, 4),
        dropout_rate=0.0,
    )
    schedule = NoiseScheduleConfig(
        name="cosine_schedule",
        schedule_type="cosine",
        num_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
    )
    config = DDPMConfig(
        name="ddpm_mnist",
        backbone=backbone,
        noise_schedule=schedule,
        input_shape=(32, 32, 1),
        loss_type="huber",
        clip_denoised=True,
    )
    assert backbone.hidden_dims == (64, 128, 256)  # lists are normalised to tuples
    assert hash(config) == hash(
        DDPMConfig(
            **{
                f: getattr(config, f)
                for f in (
                    "name",
                    "backbone",
                    "noise_schedule",
                    "input_shape",
                    "loss_type",
                    "clip_denoised",
                )
            }
        )
    )

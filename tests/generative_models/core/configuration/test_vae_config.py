"""VAEConfig: defaults, validation messages that name the field, and the JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from artifex.generative_models.core.configuration.vae_config import DECODER_TYPES, VAEConfig


def test_defaults_describe_a_two_level_mnist_vae():
    config = VAEConfig()
    assert config.input_shape == (28, 28, 1) and config.decoder == "bernoulli"
    assert config.downsampling_factor == 4
    assert config.bottleneck_shape == (7, 7, config.hidden_dims[-1])
    assert DECODER_TYPES == ("bernoulli", "gaussian")


def test_round_trip_through_json_restores_an_equal_hashable_config():
    config = VAEConfig(
        name="vae_gauss",
        input_shape=(32, 32, 3),
        latent_dim=2,
        hidden_dims=(16, 32, 64),
        dense_dim=64,
        decoder="gaussian",
        decoder_std_init=0.25,
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["hidden_dims"] == [16, 32, 64]  # JSON has no tuples
    restored = VAEConfig.from_dict(data)
    assert restored == config and hash(restored) == hash(config)
    assert isinstance(restored.hidden_dims, tuple) and isinstance(restored.input_shape, tuple)


def test_from_dict_rejects_unknown_fields_and_validates_values():
    data = VAEConfig().to_dict()
    with pytest.raises(ValueError, match=r"unknown field 'beta'"):
        VAEConfig.from_dict({**data, "beta": 4.0})
    with pytest.raises(ValueError, match="VAEConfig.decoder='laplace'"):
        VAEConfig.from_dict({**data, "decoder": "laplace"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"latent_dim": 0}, r"VAEConfig.latent_dim=0 must be an integer >= 1"),
        ({"latent_dim": 2.0}, r"VAEConfig.latent_dim=2.0 must be an integer"),
        ({"hidden_dims": ()}, r"VAEConfig.hidden_dims=\(\) must not be empty"),
        ({"hidden_dims": (32, 0)}, r"VAEConfig.hidden_dims=\(32, 0\) must contain only"),
        ({"dense_dim": 0}, r"VAEConfig.dense_dim=0 must be an integer >= 1"),
        ({"decoder": "categorical"}, r"choose one of: 'bernoulli', 'gaussian'"),
        (
            {"decoder_std_init": 0.0},
            r"VAEConfig.decoder_std_init=0.0 must be a finite number in \(0",
        ),
        ({"input_shape": (28, 28)}, r"must be \(height, width, channels\)"),
        ({"name": ""}, r"VAEConfig.name='' must be a non-empty string"),
    ],
)
def test_bad_values_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig(**changes)


def test_input_must_be_divisible_by_the_encoders_downsampling():
    with pytest.raises(ValueError, match=r"divisible by 8, the down-sampling factor of an encoder"):
        VAEConfig(input_shape=(28, 28, 1), hidden_dims=(8, 16, 32))
    assert VAEConfig(input_shape=(32, 32, 1), hidden_dims=(8, 16, 32)).bottleneck_shape == (
        4,
        4,
        32,
    )


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VAEConfig().latent_dim = 3

"""GANConfig: validated fields, derived shapes and a lossless, strict JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from artifex.generative_models.core.configuration.gan_config import GANConfig


def test_defaults_are_mnist_sized():
    config = GANConfig()
    assert config.input_shape == (28, 28, 1)
    assert config.base_shape == (7, 7)  # 28 / 2**2: two doublings reach 28
    assert config.discriminator_feature_shape == (7, 7)


def test_round_trip_through_json_restores_an_equal_config():
    config = GANConfig(
        name="sn_gan",
        input_shape=(32, 32, 1),
        latent_dim=100,
        generator_dims=(256, 128, 64),
        discriminator_dims=(32, 64, 128),
        generator_norm="group",
        spectral_norm=True,
        power_iterations=3,
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["generator_dims"] == [256, 128, 64]  # JSON has no tuples
    restored = GANConfig.from_dict(data)
    assert restored == config
    assert isinstance(restored.generator_dims, tuple) and isinstance(restored.input_shape, tuple)
    assert hash(restored) == hash(config)
    assert restored.base_shape == (4, 4) and restored.discriminator_feature_shape == (4, 4)


def test_from_dict_is_strict():
    data = GANConfig().to_dict()
    with pytest.raises(ValueError, match="unknown field 'learning_rate'"):
        GANConfig.from_dict({**data, "learning_rate": 2e-4})
    with pytest.raises(ValueError, match="generator_norm"):
        GANConfig.from_dict({**data, "generator_norm": "layer"})


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "non-empty"),
        ({"input_shape": (28, 28)}, "input_shape", "(height, width, channels)"),
        ({"input_shape": (28, 0, 1)}, "input_shape", ">= 1"),
        ({"latent_dim": 0}, "latent_dim", ">= 1"),
        ({"latent_dim": True}, "latent_dim", "integer"),
        ({"generator_dims": ()}, "generator_dims", "must not be empty"),
        ({"generator_dims": 64}, "generator_dims", "sequence"),
        ({"discriminator_dims": (64, 0)}, "discriminator_dims", ">= 1"),
        ({"generator_norm": "instance"}, "generator_norm", "'batch', 'group'"),
        ({"spectral_norm": 1}, "spectral_norm", "True or False"),
        ({"power_iterations": 0}, "power_iterations", ">= 1"),
        # 28 is not divisible by 2**3: the generator cannot double a whole map three times.
        ({"generator_dims": (128, 64, 32)}, "input_shape", "divisible by 8"),
        # Five halvings of 28 leave less than a pixel.
        ({"discriminator_dims": (8, 8, 8, 8, 8)}, "discriminator_dims", "at most 4"),
    ],
)
def test_invalid_values_name_the_field_and_the_fix(changes, field, message):
    with pytest.raises(ValueError) as error:
        dataclasses.replace(GANConfig(), **changes)
    text = str(error.value)
    assert text.startswith(f"GANConfig.{field}="), text
    assert message in text, text

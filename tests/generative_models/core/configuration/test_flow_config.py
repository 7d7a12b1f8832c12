"""FlowConfig: validated fields with fixable messages, a strict JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from artifex.generative_models.core.configuration.flow_config import FlowConfig

ERRORS = [
    ({"name": ""}, "name", "non-empty"),
    ({"input_shape": (28, 28)}, "input_shape", "(height, width, channels)"),
    ({"input_shape": (28, 0, 1)}, "input_shape", ">= 1"),
    ({"input_shape": 28}, "input_shape", "sequence"),
    ({"num_scales": 0}, "num_scales", ">= 1"),
    ({"num_scales": True}, "num_scales", "integer"),
    ({"steps_per_scale": 0}, "steps_per_scale", ">= 1"),
    ({"hidden_channels": 2.5}, "hidden_channels", "integer"),
    ({"actnorm": 1}, "actnorm", "True or False"),
    ({"invertible_conv": "shuffle"}, "invertible_conv", "'1x1', 'reverse'"),
    ({"coupling_scale": "exp"}, "coupling_scale", "'sigmoid', 'tanh'"),
    ({"split_prior": "learned"}, "split_prior", "'standard', 'conditional'"),
    ({"learn_top": "yes"}, "learn_top", "True or False"),
    ({"logit_alpha": 0.0}, "logit_alpha", "(0.0, 0.5)"),
    ({"logit_alpha": 0.5}, "logit_alpha", "(0.0, 0.5)"),
    ({"num_bits": 0}, "num_bits", ">= 1"),
    ({"num_bits": 9}, "num_bits", "<= 8"),
]


@pytest.mark.parametrize(("kwargs", "field", "hint"), ERRORS)
def test_rejects_bad_values_naming_field_value_and_fix(kwargs, field, hint):
    with pytest.raises(ValueError) as err:
        FlowConfig(**kwargs)
    message = str(err.value)
    assert f"FlowConfig.{field}={next(iter(kwargs.values()))!r}" in message
    assert hint in message


def test_default_is_a_two_scale_flow_on_28x28_digits():
    config = FlowConfig()
    assert config.input_shape == (28, 28, 1) and config.num_scales == 2  # 28 -> 14 -> 7
    assert config.num_dims == 784 and config.num_bits == 8


@pytest.mark.parametrize(
    ("shape", "scales", "fix"),
    [
        ((28, 28, 1), 3, "use num_scales <= 2"),  # 28 -> 14 -> 7: a third squeeze cannot halve 7
        ((28, 14, 1), 2, "use num_scales <= 1"),  # the width limits it
        ((7, 7, 1), 1, "pad the images to an even size"),
    ],
)
def test_refuses_shapes_the_squeezes_cannot_halve(shape, scales, fix):
    with pytest.raises(ValueError) as err:
        FlowConfig(input_shape=shape, num_scales=scales)
    message = str(err.value)
    assert message.startswith(f"FlowConfig.input_shape={shape!r} cannot be halved {scales} times")
    assert f"divisible by {2**scales}" in message and fix in message


def test_shapes_that_halve_are_accepted():
    assert FlowConfig(input_shape=[32, 32, 1], num_scales=5).input_shape == (32, 32, 1)
    assert FlowConfig(input_shape=(4, 4, 1), num_scales=2).num_dims == 16


def test_round_trip_through_json_restores_an_equal_config():
    config = FlowConfig(
        name="tiny",
        input_shape=(8, 8, 1),
        num_scales=3,
        steps_per_scale=2,
        hidden_channels=16,
        actnorm=False,
        invertible_conv="reverse",
        coupling_scale="tanh",
        split_prior="standard",
        learn_top=False,
        logit_alpha=None,
        num_bits=5,
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["input_shape"] == [8, 8, 1]
    restored = FlowConfig.from_dict(data)
    assert restored == config and hash(restored) == hash(config)
    assert isinstance(restored.input_shape, tuple)
    assert set(data) == {f.name for f in dataclasses.fields(FlowConfig)}


def test_from_dict_is_strict_and_validates():
    data = FlowConfig().to_dict()
    with pytest.raises(ValueError, match=r"unknown field 'learning_rate'"):
        FlowConfig.from_dict({**data, "learning_rate": 1e-3})
    with pytest.raises(ValueError, match=r"'hidden_channel' \(did you mean 'hidden_channels'\?\)"):
        FlowConfig.from_dict({**data, "hidden_channel": 8})
    with pytest.raises(ValueError, match="FlowConfig.num_scales"):
        FlowConfig.from_dict({**data, "num_scales": 0})

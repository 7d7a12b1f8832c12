"""Configuration of a multi-scale normalizing flow (RealNVP / Glow)."""

from __future__ import annotations

import dataclasses
from typing import Any

from artifex.generative_models.core.configuration import validation as v

#: The channel mixing between couplings: Glow's learned, LU-parameterised 1x1 convolution,
#: or RealNVP's fixed reversal of the channel order.
INVERTIBLE_CONVS = ("1x1", "reverse")
#: How a coupling bounds its scale: ``sigmoid``: ``s = sigmoid(h + 2) / sigmoid(2)`` (in
#: ``(0, 1.136)``); ``tanh``: ``log s = tanh(h)`` (``s`` in ``(1/e, e)``). Both give ``s = 1``
#: at ``h = 0``, so a zero-initialised coupling is the identity.
COUPLING_SCALES = ("sigmoid", "tanh")
#: The density of the half factored out at each scale: ``standard`` (``N(0, I)``) or
#: ``conditional`` (Glow's learned prior ``N(mu(h), sigma(h)^2)`` given the kept half ``h``).
SPLIT_PRIORS = ("standard", "conditional")


def _halvings(size: int) -> int:
    """How many times ``size`` can be halved exactly (28: twice, 28 -> 14 -> 7)."""
    count = 0
    while size % 2 == 0:
        size, count = size // 2, count + 1
    return count


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlowConfig:
    """A multi-scale flow: ``num_scales`` times (squeeze, ``steps_per_scale`` flow steps,
    factor out half the channels), the last scale without the factor-out.

    A flow step is ``actnorm -> channel mixing -> affine coupling``.

    Attributes:
      name: label for logs and checkpoints.
      input_shape: ``(height, width, channels)`` of one image. Every scale starts with a
        2x2 squeeze, so height and width must be divisible by ``2**num_scales``
        (28 -> 14 -> 7 for the default two scales).
      num_scales: levels of the multi-scale architecture (squeezes).
      steps_per_scale: flow steps at every level.
      hidden_channels: width of the coupling networks (conv 3x3 -> conv 1x1 -> conv 3x3).
      actnorm: begin every step with an activation normalisation (Glow); its scale and bias
        are set from a first batch by ``FlowModel.initialize``.
      invertible_conv: ``1x1`` (Glow) or ``reverse`` (RealNVP), see :data:`INVERTIBLE_CONVS`.
      coupling_scale: how the coupling's scale is bounded, see :data:`COUPLING_SCALES`.
        ``tanh`` by default: without the logit it learned clearly faster than Glow's sigmoid
        (3.33 against 3.78 bits/dim after 300 steps on MNIST; the sigmoid can expand by at
        most 1.136 per coupling), with it the two were equal.
      split_prior: density of the factored-out halves, see :data:`SPLIT_PRIORS`.
      learn_top: give the last scale's output a learned mean and log-std per position and
        channel (Glow's ``learntop``) instead of ``N(0, I)``.
      logit_alpha: begin the flow with the fixed logit transform
        ``logit(alpha + (1 - 2 alpha) y)`` of the dequantised image ``y`` in [0, 1) (see
        ``models.flow.logit``; its log-determinant is counted, so bits/dim stay those of
        ``y``); ``None`` models the centred ``y - 1/2`` directly. 1e-6 as in MAF for MNIST:
        training bits/dim after 400 steps on the 4,000 offline digits (4 steps per scale, 32
        channels) were 1.54 with 1e-6, 1.58 with 1e-3, 1.73 with 1e-2, 2.06 with 0.05 and
        3.03 without the logit.
      num_bits: the data's bits per sub-pixel (8: 256 levels); the dequantisation and the
        bits/dim use ``2**num_bits`` levels (images with fewer bits are quantised down).
    """

    name: str = "glow"
    input_shape: tuple[int, int, int] = (28, 28, 1)
    num_scales: int = 2
    steps_per_scale: int = 8
    hidden_channels: int = 64
    actnorm: bool = True
    invertible_conv: str = "1x1"
    coupling_scale: str = "tanh"
    split_prior: str = "conditional"
    learn_top: bool = True
    logit_alpha: float | None = 1e-6
    num_bits: int = 8

    def __post_init__(self) -> None:
        owner = type(self).__name__
        v.check_name(owner, self.name)
        shape = v.image_shape(owner, "input_shape", self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        v.check_int(owner, "num_scales", self.num_scales, minimum=1)
        v.check_int(owner, "steps_per_scale", self.steps_per_scale, minimum=1)
        v.check_int(owner, "hidden_channels", self.hidden_channels, minimum=1)
        if not isinstance(self.actnorm, bool):
            v.fail(owner, "actnorm", self.actnorm, "must be True or False")
        v.check_choice(owner, "invertible_conv", self.invertible_conv, INVERTIBLE_CONVS)
        v.check_choice(owner, "coupling_scale", self.coupling_scale, COUPLING_SCALES)
        v.check_choice(owner, "split_prior", self.split_prior, SPLIT_PRIORS)
        if not isinstance(self.learn_top, bool):
            v.fail(owner, "learn_top", self.learn_top, "must be True or False")
        if self.logit_alpha is not None:
            v.check_float(
                owner,
                "logit_alpha",
                self.logit_alpha,
                low=0.0,
                high=0.5,
                low_inclusive=False,
                high_inclusive=False,
            )
        v.check_int(owner, "num_bits", self.num_bits, minimum=1)
        if self.num_bits > 8:
            v.fail(
                owner, "num_bits", self.num_bits, "must be <= 8: the images arrive as 8-bit values"
            )
        self._check_squeezes_fit(owner, shape)

    def _check_squeezes_fit(self, owner: str, shape: tuple[int, ...]) -> None:
        height, width, _ = shape
        factor = 2**self.num_scales
        if height % factor or width % factor:
            fits = min(_halvings(height), _halvings(width))
            fix = f"use num_scales <= {fits}" if fits >= 1 else "pad the images to an even size"
            v.fail(
                owner,
                "input_shape",
                shape,
                f"cannot be halved {self.num_scales} times (num_scales={self.num_scales}: one "
                f"2x2 squeeze per scale needs height and width divisible by {factor}); {fix}, "
                f"or pad the images (e.g. 28 -> 32)",
            )

    @property
    def num_dims(self) -> int:
        """``D = height * width * channels``, the dimensions the bits/dim divides by."""
        height, width, channels = self.input_shape
        return height * width * channels

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON-serialisable), e.g. to store with weights."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowConfig:
        """Inverse of :meth:`to_dict`; every value is validated as in the constructor.

        A list (as JSON stores a tuple) is accepted for ``input_shape``; unknown keys are an
        error naming the closest valid field.
        """
        return v.from_dict(cls, data)

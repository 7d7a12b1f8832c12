"""Configuration of the noise schedule and of a DDPM model."""

from __future__ import annotations

import dataclasses
from typing import Any

from artifex.generative_models.core.configuration import validation as v
from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig

#: Beta schedules; ``quadratic`` is another name for ``scaled_linear``.
SCHEDULE_TYPES = ("linear", "scaled_linear", "quadratic", "cosine", "sigmoid")
#: What the network predicts from ``(x_t, t)``.
PREDICTION_TYPES = ("epsilon", "v_prediction", "x_start")
#: Per-element regression losses.
LOSS_TYPES = ("mse", "l1", "huber")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoiseScheduleConfig:
    """The forward process ``q(x_t | x_0)`` as a sequence of betas.

    Attributes:
      name: label for logs and checkpoints.
      schedule_type: one of :data:`SCHEDULE_TYPES`.
      num_timesteps: length ``T`` of the chain; timesteps are ``0 .. T-1``.
      beta_start, beta_end: first and last beta of the ``linear``, ``scaled_linear`` and
        ``sigmoid`` schedules. The ``cosine`` schedule is defined by its alpha-bar curve
        instead (Nichol & Dhariwal 2021, ``s = 0.008``, betas clipped at 0.999) and does
        not use them.
    """

    name: str = "noise_schedule"
    schedule_type: str = "linear"
    num_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self) -> None:
        owner = type(self).__name__
        v.check_choice(owner, "schedule_type", self.schedule_type, SCHEDULE_TYPES)
        v.check_int(owner, "num_timesteps", self.num_timesteps, minimum=2)
        v.check_float(
            owner,
            "beta_start",
            self.beta_start,
            low=0.0,
            high=1.0,
            low_inclusive=False,
            high_inclusive=False,
        )
        v.check_float(
            owner,
            "beta_end",
            self.beta_end,
            low=0.0,
            high=1.0,
            low_inclusive=False,
            high_inclusive=False,
        )
        if self.beta_end <= self.beta_start:
            v.fail(
                owner,
                "beta_end",
                self.beta_end,
                f"must be greater than beta_start={self.beta_start}",
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class DDPMConfig:
    """A denoising diffusion model: backbone + schedule + what and how it learns.

    Attributes:
      name: label for logs and checkpoints.
      backbone: the UNet; its ``in_channels`` and ``out_channels`` must equal the image's.
      noise_schedule: the forward process shared by training and sampling.
      input_shape: ``(height, width, channels)`` of one image (NHWC without the batch).
      loss_type: ``mse``, ``l1`` or ``huber`` on the prediction target.
      huber_delta: where the Huber loss turns from quadratic to linear:
        ``0.5 r^2`` for ``|r| <= delta``, ``delta (|r| - delta / 2)`` beyond it.
      prediction_type: what the network outputs (``epsilon``, ``v_prediction``,
        ``x_start``); samplers and trainer both read it from here.
      clip_denoised: clip the predicted ``x_0`` to ``[-1, 1]`` at every sampling step
        (both DDPM and DDIM), which keeps samples in the data range.
    """

    name: str = "ddpm"
    backbone: UNetBackboneConfig = dataclasses.field(default_factory=UNetBackboneConfig)
    noise_schedule: NoiseScheduleConfig = dataclasses.field(default_factory=NoiseScheduleConfig)
    input_shape: tuple[int, int, int] = (32, 32, 1)
    loss_type: str = "mse"
    huber_delta: float = 1.0
    prediction_type: str = "epsilon"
    clip_denoised: bool = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.backbone, UNetBackboneConfig):
            v.fail(owner, "backbone", self.backbone, "must be a UNetBackboneConfig")
        if not isinstance(self.noise_schedule, NoiseScheduleConfig):
            v.fail(owner, "noise_schedule", self.noise_schedule, "must be a NoiseScheduleConfig")
        shape = v.image_shape(owner, "input_shape", self.input_shape, example="(32, 32, 1)")
        object.__setattr__(self, "input_shape", shape)
        v.check_choice(owner, "loss_type", self.loss_type, LOSS_TYPES)
        v.check_float(owner, "huber_delta", self.huber_delta, low=0.0, low_inclusive=False)
        v.check_choice(owner, "prediction_type", self.prediction_type, PREDICTION_TYPES)
        if not isinstance(self.clip_denoised, bool):
            v.fail(owner, "clip_denoised", self.clip_denoised, "must be True or False")
        self._check_backbone_fits(owner, shape)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every field (JSON-serialisable), e.g. to store with weights."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DDPMConfig:
        """Inverse of :meth:`to_dict`; every value is validated as in the constructor.

        Lists (as JSON stores tuples) are accepted wherever the config holds a tuple.
        """
        return v.from_dict(cls, data)

    def _check_backbone_fits(self, owner: str, shape: tuple[int, ...]) -> None:
        height, width, channels = shape
        bb = self.backbone
        if bb.in_channels != channels:
            v.fail(
                owner,
                "backbone.in_channels",
                bb.in_channels,
                f"must equal the image channels input_shape[-1]={channels}",
            )
        if bb.out_channels != channels:
            v.fail(
                owner,
                "backbone.out_channels",
                bb.out_channels,
                f"must equal the image channels input_shape[-1]={channels}: the network "
                "predicts a tensor of the image's shape",
            )
        factor = bb.downsampling_factor
        if height % factor or width % factor:
            v.fail(
                owner,
                "input_shape",
                shape,
                f"height and width must be divisible by {factor}, the down-sampling factor "
                f"of a UNet with {len(bb.hidden_dims)} levels (pad the images, e.g. 28 -> 32, "
                "or use fewer hidden_dims)",
            )
        sizes = tuple(height // 2**i for i in range(len(bb.hidden_dims)))
        unused = [r for r in bb.attention_resolutions if r not in sizes]
        if unused:
            v.fail(
                owner,
                "backbone.attention_resolutions",
                bb.attention_resolutions,
                f"contains {unused}, which is not a feature-map size of this UNet; "
                f"sizes for input height {height} are {sizes}",
            )

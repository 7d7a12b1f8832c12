"""Configuration of a DCGAN: the generator and the discriminator share one ``GANConfig``."""

from __future__ import annotations

import dataclasses
from typing import Any

from artifex.generative_models.core.configuration import validation as v

#: Normalisation layers of the generator's hidden feature maps.
GENERATOR_NORMS = ("batch", "group")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GANConfig:
    """A DCGAN for small images: both networks are built from this one config.

    The generator projects ``z ~ N(0, I)`` (``latent_dim`` values) to a feature map of
    ``input_shape / 2**len(generator_dims)`` pixels with ``generator_dims[0]`` channels, then
    doubles the size ``len(generator_dims)`` times (nearest-neighbour upsampling and a 3x3
    convolution); the hidden maps carry ``generator_dims[1:]`` channels and the last
    convolution outputs the image channels through ``tanh``. The discriminator halves the
    image ``len(discriminator_dims)`` times with 4x4 stride-2 convolutions of
    ``discriminator_dims`` channels, then one convolution spanning the remaining map gives
    the logit.

    Attributes:
      name: label for logs and checkpoints.
      input_shape: ``(height, width, channels)`` of one image. The default ``(28, 28, 1)`` is
        MNIST's own size: no padded border for the generator to learn, ~25 % fewer pixels
        per convolution than 32x32, and the quality metric scores 28x28 digits directly.
        Height and width must be divisible by ``2**len(generator_dims)``.
      latent_dim: dimension of the generator's input noise ``z``.
      generator_dims: channels of the generator's feature maps, smallest map first.
      discriminator_dims: channels after each of the discriminator's stride-2 convolutions.
      generator_norm: ``batch`` (DCGAN's BatchNorm; sampling uses its running statistics)
        or ``group`` (GroupNorm: no batch statistics, samples independent of each other).
      spectral_norm: divide every discriminator kernel by an estimate of its largest
        singular value (Miyato et al. 2018), which bounds the network's Lipschitz constant.
      power_iterations: power-iteration steps that refine the singular-vector estimate at
        each discriminator update (with ``spectral_norm``).
    """

    name: str = "dcgan"
    input_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 64
    generator_dims: tuple[int, ...] = (128, 64)
    discriminator_dims: tuple[int, ...] = (64, 128)
    generator_norm: str = "batch"
    spectral_norm: bool = False
    power_iterations: int = 1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        v.check_name(owner, self.name)
        shape = v.image_shape(owner, "input_shape", self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        v.check_int(owner, "latent_dim", self.latent_dim, minimum=1)
        g_dims = v.as_int_tuple(
            owner, "generator_dims", self.generator_dims, minimum=1, allow_empty=False
        )
        object.__setattr__(self, "generator_dims", g_dims)
        d_dims = v.as_int_tuple(
            owner, "discriminator_dims", self.discriminator_dims, minimum=1, allow_empty=False
        )
        object.__setattr__(self, "discriminator_dims", d_dims)
        v.check_choice(owner, "generator_norm", self.generator_norm, GENERATOR_NORMS)
        if not isinstance(self.spectral_norm, bool):
            v.fail(owner, "spectral_norm", self.spectral_norm, "must be True or False")
        v.check_int(owner, "power_iterations", self.power_iterations, minimum=1)
        self._check_sizes(owner, shape, g_dims, d_dims)

    @property
    def base_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the generator's first feature map."""
        factor = 2 ** len(self.generator_dims)
        return self.input_shape[0] // factor, self.input_shape[1] // factor

    @property
    def discriminator_feature_shape(self) -> tuple[int, int]:
        """``(height, width)`` left after the discriminator's stride-2 convolutions."""
        factor = 2 ** len(self.discriminator_dims)
        return self.input_shape[0] // factor, self.input_shape[1] // factor

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON-serialisable), e.g. to store with weights."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GANConfig:
        """Inverse of :meth:`to_dict`; every value is validated as in the constructor.

        Lists (as JSON stores tuples) are accepted wherever the config holds a tuple; an
        unknown key raises a ``ValueError`` naming it and the closest valid field.
        """
        return v.from_dict(cls, data)

    @staticmethod
    def _check_sizes(
        owner: str, shape: tuple[int, ...], g_dims: tuple[int, ...], d_dims: tuple[int, ...]
    ) -> None:
        height, width, _ = shape
        factor = 2 ** len(g_dims)
        if height % factor or width % factor:
            v.fail(
                owner,
                "input_shape",
                shape,
                f"height and width must be divisible by {factor}: the generator doubles its "
                f"first map len(generator_dims)={len(g_dims)} times (use fewer generator_dims, "
                "or pad the images, e.g. 28 -> 32)",
            )
        factor = 2 ** len(d_dims)
        if height < factor or width < factor:
            v.fail(
                owner,
                "discriminator_dims",
                d_dims,
                f"has {len(d_dims)} stride-2 convolutions, which would shrink a "
                f"{height}x{width} image below one pixel; use at most "
                f"{min(height, width).bit_length() - 1} entries",
            )

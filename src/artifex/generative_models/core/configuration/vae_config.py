r"""Configuration of a convolutional variational autoencoder (VAE).

The model (Kingma & Welling 2014) has a diagonal Gaussian posterior
:math:`q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))`, the prior
:math:`p(z) = \mathcal N(0, I)` and one of two decoders :math:`p_\theta(x \mid z)`:

- ``bernoulli``: independent Bernoulli pixels with logits from the network, for binary
  (binarised) digits, the setting of the published MNIST likelihoods;
- ``gaussian``: independent Gaussian pixels :math:`\mathcal N(m_\theta(z), s^2)` around the
  network's mean, with one learned global scale :math:`s = e^{\log s}` shared by every pixel
  (initialised at ``decoder_std_init``); learning :math:`s` by maximum likelihood sets the
  balance between reconstruction and KL terms that a fixed scale would have to guess.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from artifex.generative_models.core.configuration import validation as v

#: The decoder likelihoods ``p(x | z)``.
DECODER_TYPES = ("bernoulli", "gaussian")


@dataclasses.dataclass(frozen=True, kw_only=True)
class VAEConfig:
    """A conv encoder, a latent Gaussian and a conv decoder.

    Attributes:
      name: label for logs and checkpoints.
      input_shape: ``(height, width, channels)`` of one image; height and width must be
        divisible by ``2 ** len(hidden_dims)``, the encoder's down-sampling (28 with two
        levels: 28 -> 14 -> 7).
      latent_dim: size of ``z``; 2 allows the latent-manifold plot.
      hidden_dims: conv channels per resolution level of the encoder (each level halves the
        resolution with a stride-2 conv); the decoder mirrors them.
      dense_dim: width of the fully connected layer between the last feature map and the
        posterior parameters (and, mirrored, between ``z`` and the decoder's first map).
      decoder: ``bernoulli`` or ``gaussian`` (see the module docstring).
      decoder_std_init: initial value of the Gaussian decoder's learned global pixel standard
        deviation (pixels in [-1, 1]); ignored by the Bernoulli decoder.
    """

    name: str = "vae"
    input_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 16
    hidden_dims: tuple[int, ...] = (32, 64)
    dense_dim: int = 256
    decoder: str = "bernoulli"
    decoder_std_init: float = 0.1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        v.check_name(owner, self.name)
        shape = v.image_shape(owner, "input_shape", self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        v.check_int(owner, "latent_dim", self.latent_dim, minimum=1)
        dims = v.as_int_tuple(owner, "hidden_dims", self.hidden_dims, minimum=1, allow_empty=False)
        object.__setattr__(self, "hidden_dims", dims)
        v.check_int(owner, "dense_dim", self.dense_dim, minimum=1)
        v.check_choice(owner, "decoder", self.decoder, DECODER_TYPES)
        v.check_float(
            owner, "decoder_std_init", self.decoder_std_init, low=0.0, low_inclusive=False
        )
        factor = self.downsampling_factor
        if shape[0] % factor or shape[1] % factor:
            v.fail(
                owner,
                "input_shape",
                shape,
                f"height and width must be divisible by {factor}, the down-sampling factor of "
                f"an encoder with {len(dims)} levels (use fewer hidden_dims, or pad the images)",
            )

    @property
    def downsampling_factor(self) -> int:
        """How much the encoder shrinks height and width: ``2 ** len(hidden_dims)``."""
        return 2 ** len(self.hidden_dims)

    @property
    def bottleneck_shape(self) -> tuple[int, int, int]:
        """``(h, w, c)`` of the encoder's last feature map (and the decoder's first)."""
        h, w, _ = self.input_shape
        f = self.downsampling_factor
        return (h // f, w // f, self.hidden_dims[-1])

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON-serialisable), e.g. to store with weights."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        """Inverse of :meth:`to_dict`; every value is validated as in the constructor.

        Lists (as JSON stores tuples) are accepted wherever the config holds a tuple;
        unknown keys are an error.
        """
        return v.from_dict(cls, data)

"""Configuration of the UNet noise-prediction network."""

from __future__ import annotations

import dataclasses

from artifex.generative_models.core.activations import ACTIVATIONS
from artifex.generative_models.core.configuration import validation as v


@dataclasses.dataclass(frozen=True, kw_only=True)
class UNetBackboneConfig:
    """A UNet with one resolution level per entry of ``hidden_dims``.

    Attributes:
      name: label for logs and checkpoints.
      hidden_dims: output channels of each level, highest resolution first. Every level but
        the last halves the feature map, so the input's height and width must be divisible
        by ``2 ** (len(hidden_dims) - 1)``.
      activation: non-linearity used throughout (see ``ACTIVATIONS``).
      in_channels: channels of the input image.
      out_channels: channels of the predicted tensor.
      time_embedding_dim: width of the sinusoidal timestep embedding and of its MLP.
      attention_resolutions: feature-map sizes (height in pixels) at which a self-attention
        layer follows each residual block, e.g. ``(8,)`` for the 8x8 level of a 32x32 input.
        Every entry must be a size that occurs, otherwise it would silently do nothing.
      num_res_blocks: residual blocks per level on the way down (``+1`` on the way up).
      channel_mult: optional multipliers of ``hidden_dims[0]``; if given they must describe
        the same channels as ``hidden_dims`` (kept for configs written in that style).
      dropout_rate: dropout inside every residual block during training.
      num_classes: ``None`` (default) for an unconditional network. An integer makes it
        class-conditional: a learned embedding of the label (``0 .. num_classes - 1``, plus
        one extra "null" label meaning *no class*) is added to the timestep embedding, so
        one network learns both the conditional and, from the null label, the
        unconditional model that classifier-free guidance needs.
    """

    name: str = "unet_backbone"
    hidden_dims: tuple[int, ...] = (64, 128, 256)
    activation: str = "silu"
    in_channels: int = 1
    out_channels: int = 1
    time_embedding_dim: int = 128
    attention_resolutions: tuple[int, ...] = ()
    num_res_blocks: int = 2
    channel_mult: tuple[int, ...] | None = None
    dropout_rate: float = 0.0
    num_classes: int | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        dims = v.as_int_tuple(owner, "hidden_dims", self.hidden_dims, minimum=1, allow_empty=False)
        object.__setattr__(self, "hidden_dims", dims)
        attn = v.as_int_tuple(
            owner, "attention_resolutions", self.attention_resolutions, minimum=1, allow_empty=True
        )
        object.__setattr__(self, "attention_resolutions", attn)
        if self.channel_mult is not None:
            mult = v.as_int_tuple(
                owner, "channel_mult", self.channel_mult, minimum=1, allow_empty=False
            )
            object.__setattr__(self, "channel_mult", mult)
            implied = tuple(dims[0] * m for m in mult)
            if implied != dims:
                v.fail(
                    owner,
                    "channel_mult",
                    mult,
                    f"implies channels {implied} but hidden_dims={dims}; make them agree "
                    "(hidden_dims[i] == hidden_dims[0] * channel_mult[i]) or drop channel_mult",
                )
        v.check_choice(owner, "activation", self.activation, ACTIVATIONS)
        v.check_int(owner, "in_channels", self.in_channels, minimum=1)
        v.check_int(owner, "out_channels", self.out_channels, minimum=1)
        v.check_int(owner, "time_embedding_dim", self.time_embedding_dim, minimum=2)
        if self.time_embedding_dim % 2:
            v.fail(
                owner,
                "time_embedding_dim",
                self.time_embedding_dim,
                "must be even (half sine, half cosine features)",
            )
        v.check_int(owner, "num_res_blocks", self.num_res_blocks, minimum=1)
        v.check_float(
            owner, "dropout_rate", self.dropout_rate, low=0.0, high=1.0, high_inclusive=False
        )
        if self.num_classes is not None:
            v.check_int(owner, "num_classes", self.num_classes, minimum=2)

    @property
    def downsampling_factor(self) -> int:
        """How much the deepest level is smaller than the input, per spatial axis."""
        return 2 ** (len(self.hidden_dims) - 1)

"""The UNet that predicts noise (or x0, or v) from a noisy image and its timestep.

Layout (Ho et al. 2020), for ``hidden_dims = (c0, c1, ..., cL)``:

* ``conv_in``: image -> ``c0`` channels;
* down level ``i``: ``num_res_blocks`` residual blocks to ``ci`` channels (each followed by
  self-attention when the feature-map size is in ``attention_resolutions``), then a
  stride-2 convolution except after the last level; every block's output is kept as a skip;
* middle: residual block, attention (if the deepest size is listed), residual block;
* up level ``i`` (deepest first): ``num_res_blocks + 1`` residual blocks, each fed the
  previous output concatenated with one skip, attention as above, then 2x upsampling
  except after the top level;
* ``norm -> act -> conv_out`` to ``out_channels``.

With ``num_classes`` set, a class embedding (:mod:`..core.layers.class_embedding`) is added to
the timestep embedding, which every residual block reads: the label conditions the network
the same way the timestep does.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.activations import get_activation
from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
from artifex.generative_models.core.layers.attention import AttentionBlock
from artifex.generative_models.core.layers.class_embedding import ClassEmbedding, null_labels
from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.core.layers.normalization import group_norm
from artifex.generative_models.core.layers.resample import Downsample, Upsample
from artifex.generative_models.core.layers.residual_block import ResidualBlock
from artifex.generative_models.core.layers.time_embedding import TimestepEmbedding


class UNetLevel(nnx.Module):
    """Residual blocks (with optional attention) at one resolution, then a resampler."""

    def __init__(self, blocks: list, attentions: list | None, resample: nnx.Module | None):
        self.blocks = nnx.List(blocks)
        self.attentions = nnx.List(attentions) if attentions else None
        self.resample = resample


class UNet(nnx.Module):
    """UNet backbone built from a :class:`UNetBackboneConfig`.

    Args:
      config: the backbone configuration.
      image_size: input height in pixels; decides where attention goes.
      rngs: ``params`` stream for initialisation.
    """

    def __init__(self, config: UNetBackboneConfig, *, image_size: int, rngs: nnx.Rngs):
        self.config = config
        act = get_activation(config.activation)
        self.activation = act
        dims = config.hidden_dims
        temb = config.time_embedding_dim

        def res(cin: int, cout: int) -> ResidualBlock:
            return ResidualBlock(cin, cout, temb, act, config.dropout_rate, rngs=rngs)

        def attn(ch: int, size: int, count: int) -> list | None:
            if size not in config.attention_resolutions:
                return None
            return [AttentionBlock(ch, rngs=rngs) for _ in range(count)]

        self.time_embedding = TimestepEmbedding(temb, act, rngs=rngs)
        self.class_embedding = (
            None
            if config.num_classes is None
            else ClassEmbedding(config.num_classes, temb, rngs=rngs)
        )
        self.conv_in = conv(config.in_channels, dims[0], (3, 3), rngs=rngs)

        skips = [dims[0]]
        ch, size = dims[0], image_size
        down = []
        for i, out in enumerate(dims):
            blocks = []
            for _ in range(config.num_res_blocks):
                blocks.append(res(ch, out))
                ch = out
                skips.append(ch)
            last = i == len(dims) - 1
            down.append(
                UNetLevel(
                    blocks,
                    attn(ch, size, config.num_res_blocks),
                    None if last else Downsample(ch, rngs=rngs),
                )
            )
            if not last:
                skips.append(ch)
                size //= 2
        self.down = nnx.List(down)

        self.mid_block1 = res(ch, ch)
        mid_attn = attn(ch, size, 1)
        self.mid_attention = mid_attn[0] if mid_attn else None
        self.mid_block2 = res(ch, ch)

        up = []
        for i in reversed(range(len(dims))):
            blocks = []
            for _ in range(config.num_res_blocks + 1):
                blocks.append(res(ch + skips.pop(), dims[i]))
                ch = dims[i]
            up.append(
                UNetLevel(
                    blocks,
                    attn(ch, size, config.num_res_blocks + 1),
                    Upsample(ch, rngs=rngs) if i > 0 else None,
                )
            )
            if i > 0:
                size *= 2
        self.up = nnx.List(up)

        self.norm_out = group_norm(ch, rngs=rngs)
        self.conv_out = conv(ch, config.out_channels, (3, 3), rngs=rngs)

    def __call__(
        self,
        x: jax.Array,
        t: jax.Array,
        *,
        labels: jax.Array | None = None,
        dropout_key: jax.Array | None = None,
    ) -> jax.Array:
        """Predict from ``x`` (``(B, H, W, in_channels)``) at integer timesteps ``t`` (``(B,)``).

        ``labels`` (``(B,)`` integers, ``num_classes`` = the null label) condition a
        class-conditional network; ``None`` means the null label. Dropout is active only
        when ``dropout_key`` is given (training).
        """
        temb = self.time_embedding(t)
        if self.class_embedding is not None:
            if labels is None:
                labels = null_labels(self.config.num_classes, x.shape[0])
            temb = temb + self.class_embedding(labels)
        elif labels is not None:
            raise ValueError(
                "labels were given to an unconditional UNet; set "
                "UNetBackboneConfig(num_classes=...) to train a class-conditional model"
            )
        temb = temb.astype(x.dtype)  # the sinusoids are float32: compute in the input's dtype
        counter = itertools.count()

        def block_key() -> jax.Array | None:
            # A distinct dropout key per residual block, derived deterministically.
            idx = next(counter)
            return None if dropout_key is None else jax.random.fold_in(dropout_key, idx)

        h = self.conv_in(x)
        skips = [h]
        for level in self.down:
            for j, block in enumerate(level.blocks):
                h = block(h, temb, block_key())
                if level.attentions is not None:
                    h = level.attentions[j](h)
                skips.append(h)
            if level.resample is not None:
                h = level.resample(h)
                skips.append(h)

        h = self.mid_block1(h, temb, block_key())
        if self.mid_attention is not None:
            h = self.mid_attention(h)
        h = self.mid_block2(h, temb, block_key())

        for level in self.up:
            for j, block in enumerate(level.blocks):
                h = block(jnp.concatenate([h, skips.pop()], axis=-1), temb, block_key())
                if level.attentions is not None:
                    h = level.attentions[j](h)
            if level.resample is not None:
                h = level.resample(h)

        return self.conv_out(self.activation(self.norm_out(h)))

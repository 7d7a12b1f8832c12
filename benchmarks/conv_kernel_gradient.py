r"""Kernel gradient of the UNet's stride-1 convolutions: per-tap matrix products against XLA's.

The kernel gradient of a stride-1 NHWC/HWIO convolution can be written per kernel tap,

.. math::

    \frac{\partial L}{\partial W_{ij}} = \sum_{b,h,w} x^{\mathrm{pad}}_{b,\,h + i,\,w + j}
    \otimes \frac{\partial L}{\partial y_{b,h,w}},

one ``(C_in, B H W) @ (B H W, C_out)`` matrix product per tap. With jaxlib 0.10.2 that form was
3-6x faster per FLOP on the CPU than XLA's own gradient and artifex used it; with 0.11.1 XLA's
own is faster and the layers use it everywhere (``core/layers/conv2d.py``). This times both,
side by side in one process, on the 3x3 convolutions of the tutorial's UNet (channels
64/128/256 at 32/16/8 pixels) and the CPU preset's, on the default backend, so the choice can
be checked again on another machine or version:

    python benchmarks/conv_kernel_gradient.py [--batch-size 64] [--repeats 5] [--out FILE]

Each figure is the median of ``--repeats`` timed calls after a compile-and-warm-up call,
waiting for the result (``block_until_ready``); the two versions alternate call by call, so
a change of machine speed affects both. ``ratio`` is XLA's time over the per-tap time: above 1
the per-tap form is faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

#: (spatial size, input channels, output channels) of the tutorial UNet's 3x3 convolutions,
#: and of the CPU preset's largest.
SHAPES = (
    (32, 64, 64),
    (32, 128, 64),
    (16, 128, 128),
    (16, 256, 128),
    (8, 256, 256),
    (32, 16, 16),
)


def per_tap_kernel_gradient(x, grad_out, kernel_shape, padding):
    """The per-tap form above; the taps run in a ``lax.scan`` so that one window exists at a
    time."""
    import jax.numpy as jnp
    from jax import lax

    kh, kw, cin, cout = kernel_shape
    (pt, pb), (pl, pr) = padding
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    batch, ho, wo, _ = grad_out.shape
    g = grad_out.reshape(-1, cout)

    def tap(carry, offset):
        window = lax.dynamic_slice(xp, (0, offset[0], offset[1], 0), (batch, ho, wo, cin))
        return carry, window.reshape(-1, cin).T @ g

    offsets = jnp.array([(i, j) for i in range(kh) for j in range(kw)], dtype=jnp.int32)
    return lax.scan(tap, None, offsets)[1].reshape(kernel_shape)


def xla_kernel_gradient(x, grad_out, kernel, padding):
    """``dL/dW`` as XLA derives it: the transpose of the forward convolution."""
    import jax
    from jax import lax

    def forward(k):
        return lax.conv_general_dilated(
            x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    return jax.vjp(forward, kernel)[1](grad_out)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=common.RESULTS_DIR / "conv_kernel_gradient.json"
    )
    args = parser.parse_args(argv)

    import jax
    import numpy as np

    meta = common.machine()
    print(common.describe(meta))
    padding = ((1, 1), (1, 1))
    per_tap = jax.jit(lambda x, g, w: per_tap_kernel_gradient(x, g, w.shape, padding))
    xla = jax.jit(lambda x, g, w: xla_kernel_gradient(x, g, w, padding))
    rows, records = [], []
    for size, cin, cout in SHAPES:
        kx, kg, kw = jax.random.split(jax.random.key(size * cin + cout), 3)
        x = jax.random.normal(kx, (args.batch_size, size, size, cin))
        g = jax.random.normal(kg, (args.batch_size, size, size, cout))
        w = jax.random.normal(kw, (3, 3, cin, cout))
        times: dict[str, list[float]] = {"per_tap": [], "xla": []}
        np.testing.assert_allclose(per_tap(x, g, w), xla(x, g, w), rtol=2e-3, atol=2e-2)
        for _ in range(args.repeats):
            for name, fn in (("per_tap", per_tap), ("xla", xla)):
                start = time.perf_counter()
                jax.block_until_ready(fn(x, g, w))
                times[name].append(time.perf_counter() - start)
        flop = 2 * args.batch_size * size * size * cin * cout * 9
        median = {name: statistics.median(t) for name, t in times.items()}
        record = {
            "shape": [args.batch_size, size, size, cin, cout],
            "gflop": round(flop / 1e9, 2),
            **{f"{name}_ms": round(1e3 * t, 2) for name, t in median.items()},
            "ratio_xla_over_per_tap": round(median["xla"] / median["per_tap"], 2),
        }
        records.append(record)
        rows.append(
            [
                f"{size}x{size} {cin}->{cout}",
                record["gflop"],
                record["per_tap_ms"],
                record["xla_ms"],
                record["ratio_xla_over_per_tap"],
            ]
        )
    print(common.format_table(["conv", "GFLOP", "per-tap ms", "XLA ms", "ratio"], rows))
    payload = {"benchmark": "conv_kernel_gradient", "machine": meta, "results": records}
    print(f"wrote {common.write_json(args.out, payload)}")


if __name__ == "__main__":
    main()

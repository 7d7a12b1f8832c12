r"""Kernel gradient of the UNet's convolutions: over batch chunks (artifex, CPU) against XLA's.

The kernel gradient of a convolution is a sum over the batch, so it can be computed over
chunks of the batch and added up. artifex's convolutions do that on the CPU
(``core/layers/conv_kernel_gradient.py``): XLA:CPU (jaxlib 0.11.1) runs one contraction over
a whole training batch 2-4x slower per FLOP than over chunks of ~1,024 output positions. This
times both forms, side by side in one process, on the 3x3 convolutions of the tutorial's
UNet (channels 64/128/256 at 32/16/8 pixels) and the CPU preset's largest, so the choice can
be checked again on another machine or version:

    python benchmarks/conv_kernel_gradient.py [--batch-size 64] [--repeats 5] [--out FILE]

Each figure is the median of ``--repeats`` timed calls after a compile-and-warm-up call,
waiting for the result (``block_until_ready``); the two versions alternate call by call, so
a change of machine speed affects both. ``ratio`` is XLA's time over the chunked time: above
1 the chunked form is faster. On a GPU artifex keeps XLA's own gradient, so both columns time
the same program there.
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


def chunked_kernel_gradient(x, grad_out, kernel, padding):
    """``dL/dW`` of artifex's convolution (chunked over the batch on the CPU)."""
    import jax

    from artifex.generative_models.core.layers.conv_kernel_gradient import conv_general_dilated

    def forward(k):
        return conv_general_dilated(
            x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    return jax.vjp(forward, kernel)[1](grad_out)[0]


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
    from artifex.generative_models.core.layers.conv_kernel_gradient import chunk_count

    chunked = jax.jit(lambda x, g, w: chunked_kernel_gradient(x, g, w, padding))
    xla = jax.jit(lambda x, g, w: xla_kernel_gradient(x, g, w, padding))
    rows, records = [], []
    for size, cin, cout in SHAPES:
        kx, kg, kw = jax.random.split(jax.random.key(size * cin + cout), 3)
        x = jax.random.normal(kx, (args.batch_size, size, size, cin))
        g = jax.random.normal(kg, (args.batch_size, size, size, cout))
        w = jax.random.normal(kw, (3, 3, cin, cout))
        times: dict[str, list[float]] = {"chunked": [], "xla": []}
        np.testing.assert_allclose(chunked(x, g, w), xla(x, g, w), rtol=2e-3, atol=2e-2)
        for _ in range(args.repeats):
            for name, fn in (("chunked", chunked), ("xla", xla)):
                start = time.perf_counter()
                jax.block_until_ready(fn(x, g, w))
                times[name].append(time.perf_counter() - start)
        flop = 2 * args.batch_size * size * size * cin * cout * 9
        median = {name: statistics.median(t) for name, t in times.items()}
        record = {
            "shape": [args.batch_size, size, size, cin, cout],
            "gflop": round(flop / 1e9, 2),
            "chunks": chunk_count(args.batch_size, size * size, 2 * 9 * cin * cout),
            **{f"{name}_ms": round(1e3 * t, 2) for name, t in median.items()},
            "ratio_xla_over_chunked": round(median["xla"] / median["chunked"], 2),
        }
        records.append(record)
        rows.append(
            [
                f"{size}x{size} {cin}->{cout}",
                record["gflop"],
                record["chunks"],
                record["chunked_ms"],
                record["xla_ms"],
                record["ratio_xla_over_chunked"],
            ]
        )
    headers = ["conv", "GFLOP", "chunks", "chunked ms", "XLA ms", "ratio"]
    print(common.format_table(headers, rows))
    payload = {"benchmark": "conv_kernel_gradient", "machine": meta, "results": records}
    print(f"wrote {common.write_json(args.out, payload)}")


if __name__ == "__main__":
    main()

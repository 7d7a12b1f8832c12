r"""Derivatives of the UNet's convolutions: artifex's (for XLA:CPU) against XLA's own.

artifex's convolutions (``core/layers/conv_gradients.py``) compute their derivatives on the
CPU in XLA:CPU's canonical layout, with the kernel gradient summed over batch chunks; XLA's
own derivatives run 2-4x slower per FLOP over a whole batch, and 10-200x slower inside a
loop body such as the microbatch ``lax.scan`` of gradient accumulation, where XLA does not
transpose them into that layout. This times both forms, side by side in one process, on the
3x3 convolutions of the tutorial's UNet (channels 64/128/256 at 32/16/8 pixels) and the CPU
preset's largest, for the kernel gradient and the input gradient:

    python benchmarks/conv_kernel_gradient.py [--batch-size 64] [--scan K] [--repeats 5]
        [--out FILE]

``--scan K`` computes the derivatives of ``K`` microbatches of ``batch-size / K`` inside a
``lax.scan``, as ``DiffusionTrainingConfig(microbatch_size=...)`` does. Each figure is the
median of ``--repeats`` timed calls after a compile-and-warm-up call, waiting for the result
(``block_until_ready``); the two versions alternate call by call, so a change of machine
speed affects both. ``ratio`` is XLA's time over artifex's: above 1 artifex's is faster. On
a GPU artifex keeps XLA's own derivatives, so both columns time the same program there.
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
HEADERS = ["conv", "derivative", "GFLOP", "chunks", "artifex ms", "XLA ms", "ratio"]


def derivative(conv, wrt: str, microbatches: int):
    """``(x, g, w) -> dL/dw`` or ``dL/dx`` of ``L = <conv(x, w), g>``, over scanned microbatches."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def one(x, g, w):
        def forward(x, w):
            return conv(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))

        _, pullback = jax.vjp(forward, x, w)
        return pullback(g)[0 if wrt == "input" else 1]

    if microbatches == 1:
        return jax.jit(one)

    def scanned(x, g, w):
        def split(a):
            return a.reshape(microbatches, -1, *a.shape[1:])

        def body(total, chunk):
            d = one(*chunk, w)
            return (total, d) if wrt == "input" else (total + d, None)

        total, stacked = lax.scan(body, jnp.zeros_like(w), (split(x), split(g)))
        return stacked.reshape(x.shape) if wrt == "input" else total

    return jax.jit(scanned)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=common.RESULTS_DIR / "conv_kernel_gradient.json"
    )
    parser.add_argument(
        "--scan",
        type=int,
        default=1,
        metavar="K",
        help="inside a lax.scan over K microbatches (1: no scan)",
    )
    args = parser.parse_args(argv)

    import jax
    import numpy as np

    meta = common.machine()
    print(common.describe(meta))
    from jax import lax

    from artifex.generative_models.core.layers.conv_gradients import (
        chunk_count,
        conv_general_dilated,
    )

    if args.batch_size % args.scan:
        parser.error(f"--scan {args.scan} does not divide --batch-size {args.batch_size}")
    micro = args.batch_size // args.scan
    rows, records = [], []
    for size, cin, cout in SHAPES:
        kx, kg, kw = jax.random.split(jax.random.key(size * cin + cout), 3)
        x = jax.random.normal(kx, (args.batch_size, size, size, cin))
        g = jax.random.normal(kg, (args.batch_size, size, size, cout))
        w = jax.random.normal(kw, (3, 3, cin, cout))
        for wrt in ("kernel", "input"):
            ours = derivative(conv_general_dilated, wrt, args.scan)
            xla = derivative(lax.conv_general_dilated, wrt, args.scan)
            np.testing.assert_allclose(ours(x, g, w), xla(x, g, w), rtol=2e-3, atol=2e-2)
            times: dict[str, list[float]] = {"artifex": [], "xla": []}
            for _ in range(args.repeats):
                for name, fn in (("artifex", ours), ("xla", xla)):
                    start = time.perf_counter()
                    jax.block_until_ready(fn(x, g, w))
                    times[name].append(time.perf_counter() - start)
            median = {name: statistics.median(t) for name, t in times.items()}
            record = {
                "shape": [args.batch_size, size, size, cin, cout],
                "derivative": wrt,
                "microbatches": args.scan,
                "gflop": round(2 * args.batch_size * size * size * cin * cout * 9 / 1e9, 2),
                "chunks": chunk_count(micro, size * size, 2 * 9 * cin * cout)
                if wrt == "kernel"
                else 1,
                **{f"{name}_ms": round(1e3 * t, 2) for name, t in median.items()},
                "ratio_xla_over_artifex": round(median["xla"] / median["artifex"], 2),
            }
            records.append(record)
            rows.append(
                [
                    f"{size}x{size} {cin}->{cout}",
                    wrt,
                    record["gflop"],
                    record["chunks"],
                    record["artifex_ms"],
                    record["xla_ms"],
                    record["ratio_xla_over_artifex"],
                ]
            )
            print(common.format_table(HEADERS, rows[-1:]), flush=True)
    print(common.format_table(HEADERS, rows))
    payload = {
        "benchmark": "conv_kernel_gradient",
        "machine": meta,
        "microbatches": args.scan,
        "results": records,
    }
    print(f"wrote {common.write_json(args.out, payload)}")


if __name__ == "__main__":
    main()

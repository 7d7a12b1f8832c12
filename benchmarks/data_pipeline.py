"""Throughput of the MNIST training input pipeline (DataRax + TFDS) at batch 256.

The pipeline must never be the bottleneck: the target is >= 100k images/s on a CPU, i.e. a
few milliseconds per batch against training steps that take hundreds. Every batch is
waited for (``block_until_ready``), so the figures are what a consumer that synchronises
each step would see; JAX's asynchronous dispatch can only make the real cost lower.

Uses full MNIST when it is prepared in the TFDS data dir, otherwise the 5,000 offline
digits; a 60,000-example copy (the offline digits tiled 15x) measures MNIST's epoch size.

    python benchmarks/data_pipeline.py [--epochs 20] [--out benchmarks/results/data_pipeline.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

import jax
import numpy as np

from artifex.data import DatasetNotPreparedError, ImageBatchIterator, load_image_dataset
from artifex.data.offline_mnist import OFFLINE_CONFIG, prepare_offline_mnist

TARGET_IMAGES_PER_S = 100_000


def machine() -> dict:
    """CPU, cores, load and library versions: what the figures depend on."""
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("jax", "jaxlib", "flax", "datarax", "tensorflow-datasets"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["numpy"] = np.__version__
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax_devices": [str(d) for d in jax.devices()],
        "versions": versions,
    }


def measure(images: np.ndarray, labels: np.ndarray, batch_size: int, epochs: int) -> dict:
    """Build the iterator, then time ``epochs`` full epochs batch by batch."""
    start = time.perf_counter()
    it = ImageBatchIterator(images, labels, batch_size, seed=0)
    jax.block_until_ready(next(it))  # first batch: tracing and compilation
    first_batch_s = time.perf_counter() - start
    list(it.epoch())  # finish the warm-up epoch
    epoch_s = []
    for _ in range(epochs):
        start = time.perf_counter()
        for batch in it.epoch():
            jax.block_until_ready(batch)
        epoch_s.append(time.perf_counter() - start)
    batches = epochs * it.batches_per_epoch
    elapsed = sum(epoch_s)
    median_epoch_s = float(np.median(epoch_s))
    return {
        "examples": int(images.shape[0]),
        "batch_size": batch_size,
        "batches_per_epoch": it.batches_per_epoch,
        "epochs_timed": epochs,
        "build_and_first_batch_s": round(first_batch_s, 3),
        "batches_per_s": round(batches / elapsed, 1),
        "images_per_s": round(batches * batch_size / elapsed),
        "ms_per_batch": round(1000 * elapsed / batches, 3),
        "median_epoch_images_per_s": round(it.batches_per_epoch * batch_size / median_epoch_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--data-dir", default=None, help="TFDS data dir (default as TFDS)")
    parser.add_argument("--out", default="benchmarks/results/data_pipeline.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    start = time.perf_counter()
    try:
        data = load_image_dataset("mnist", data_dir=args.data_dir)
    except DatasetNotPreparedError:
        data = load_image_dataset(
            "mnist", data_dir=prepare_offline_mnist(args.data_dir), config=OFFLINE_CONFIG
        )
    load_s = time.perf_counter() - start
    which = "offline subset (shipped digits)" if data.offline_subset else "full MNIST"
    print(f"data: {which}, {len(data)} train images, loaded in {load_s:.1f} s")

    runs = {which: measure(data.images, data.labels, args.batch_size, args.epochs)}
    if data.offline_subset:
        reps = -(-60_000 // len(data))
        tiled = "offline digits tiled to 60,000"
        runs[tiled] = measure(
            np.tile(data.images, (reps, 1, 1, 1))[:60_000],
            np.tile(data.labels, reps)[:60_000],
            args.batch_size,
            max(3, args.epochs // 5),
        )
    for name, run in runs.items():
        verdict = "OK" if run["images_per_s"] >= TARGET_IMAGES_PER_S else "BELOW TARGET"
        print(
            f"{name}: {run['images_per_s']:,} images/s (median epoch "
            f"{run['median_epoch_images_per_s']:,}), {run['batches_per_s']:,} batches/s, "
            f"{run['ms_per_batch']} ms/batch at batch {run['batch_size']} "
            f"(first batch incl. compile {run['build_and_first_batch_s']} s) [{verdict}]"
        )
    result = {
        "benchmark": "data_pipeline",
        "target_images_per_s": TARGET_IMAGES_PER_S,
        "dataset_load_s": round(load_s, 2),
        "load_average_1min_before": load_before,
        "runs": runs,
        "machine": machine(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

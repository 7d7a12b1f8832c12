"""Footprint of an installed environment: packages, disk size, import and first-batch times.

Run with the interpreter of the environment to measure (it need not be this checkout's):

    .venv/bin/python benchmarks/environment.py [--repeats 5] [--out FILE.json]

Every timing is a fresh subprocess, so the import caches of this process do not help; each is
repeated and the median reported. "first batch" is a new process importing artifex.data,
preparing the 5,000 offline MNIST digits in an empty TFDS data dir and taking one batch of 64,
i.e. what a tutorial run waits for before training starts (the seconds from the import on are
reported separately). "tutorial imports" are the imports at the top of the MNIST tutorial.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

TUTORIAL_IMPORTS = (
    "import jax, optax, numpy; from flax import nnx; "
    "from artifex.data import make_train_iterator; "
    "from artifex.generative_models.models.diffusion.ddpm import DDPMModel; "
    "from artifex.generative_models.training.trainers.diffusion_trainer import DiffusionTrainer"
)
FIRST_BATCH = """
import sys, time
start = time.perf_counter()
from artifex.data import make_train_iterator
it = make_train_iterator("mnist", 64, data_dir=sys.argv[1], offline_fallback=True, download=False)
batch = next(it)
batch["image"].block_until_ready()
print(time.perf_counter() - start)
"""


def seconds(code: str, *args: str) -> float:
    """Wall time of a fresh ``python -c code``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    return time.perf_counter() - start


def directory_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    distributions = sorted({d.metadata["Name"].lower() for d in metadata.distributions()})
    subprocess.run([sys.executable, "-c", "import artifex"], check=True)  # warm the disk
    imports = [seconds("import artifex") for _ in range(args.repeats)]
    tutorial = [seconds(TUTORIAL_IMPORTS) for _ in range(args.repeats)]
    first, after_import = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as data_dir:
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", FIRST_BATCH, data_dir],
                check=True,
                capture_output=True,
                text=True,
            )
            first.append(time.perf_counter() - start)
            after_import.append(float(out.stdout.strip().splitlines()[-1]))
    result = {
        "python": sys.version.split()[0],
        "prefix": sys.prefix,
        "packages": len(distributions),
        "tensorflow_installed": "tensorflow" in distributions,
        "environment_mb": round(directory_mb(Path(sys.prefix)), 1),
        "import_artifex_s": round(statistics.median(imports), 3),
        "tutorial_imports_s": round(statistics.median(tutorial), 2),
        "first_batch_s": round(statistics.median(first), 2),
        "first_batch_from_import_s": round(statistics.median(after_import), 2),
        "repeats": args.repeats,
        "load_average_1min": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d"),
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Train the packaged demo model and write ``artifex/pretrained/weights/conditional_mnist.npz``.

    python scripts/train_demo_model.py [--run outputs/demo_model] [--skip-training]

Runs the class-conditional example's ``cpu`` preset with seed 0 on the 4,000 offline
training digits (``examples/.../conditional_mnist_training.py --preset cpu --seed 0``: fixed
seed, fixed data order, so the same machine and library versions give the same weights),
scores the EMA model at the preset's guidance scales, and stores the parameters, the
configuration and that record (steps, training time, the guidance sweep) in the package.
``--skip-training`` packs an existing run of that command instead (its summary must show
the same preset and seed). About 20 minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples/generative_models/image/diffusion/conditional_mnist_training.py"
COMMAND = ["--preset", "cpu", "--seed", "0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=ROOT / "outputs/demo_model")
    parser.add_argument("--skip-training", action="store_true", help="pack an existing run")
    parser.add_argument("--output", type=Path, help="default: the packaged file")
    args = parser.parse_args()

    if not args.skip_training:
        command = [sys.executable, str(EXAMPLE), *COMMAND, "--output-dir", str(args.run)]
        print("running:", " ".join(command), flush=True)
        subprocess.run(command, check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    summary = json.loads((args.run / "summary.json").read_text())
    if summary["config"]["preset"] != "cpu" or summary["config"]["seed"] != 0:
        raise SystemExit(f"{args.run} is not a run of {' '.join(COMMAND)}; train it here")

    from flax import nnx

    from artifex.generative_models.core.configuration import DDPMConfig
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.checkpointing import (
        best_model_metadata,
        load_best_model,
    )
    from artifex.pretrained import CONDITIONAL_MNIST_PATH, save_pretrained

    export = args.run / "ema_model"
    model = DDPMModel(DDPMConfig.from_dict(best_model_metadata(export)["config"]), rngs=nnx.Rngs(0))
    load_best_model(export, model)
    record = {
        "command": f"{EXAMPLE.relative_to(ROOT)} {' '.join(COMMAND)}",
        "steps": summary["steps"],
        "train_seconds": round(summary["train_seconds"]),
        "cpu_count": summary["cpu_count"],
        "sampler": summary["config"]["sampler"],
        "sampling_steps": summary["config"]["sampling_steps"],
        "guidance_sweep": [
            {k: row[k] for k in ("guidance_scale", "conditional_accuracy", "fid", "num_samples")}
            for row in summary["guidance_sweep"]
        ],
    }
    path = save_pretrained(args.output or CONDITIONAL_MNIST_PATH, model, record=record)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

"""Sanity figures of the MNIST sample-quality metric: real digits vs known degradations.

Scores the 1,000 held-out offline MNIST digits with ``MNISTQualityMetric.load()`` (the
packaged classifier, reference = the 4,000 train digits), then the same digits degraded:
Gaussian blur (sigma 0.5, 1, 2 px), additive Gaussian noise (std 0.1, 0.2, 0.3, 0.5, 1.0 in
[-1, 1] units, clipped), a blanked 12x12 centre square, and 100 digits of a single class.
Also random subsets of the real digits at smaller sample counts, to show how FID's bias
grows as N shrinks, and the time to score 1,000 images.

    python benchmarks/metric_sanity.py

Prints a table and writes ``benchmarks/results/metric_sanity.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

DEFAULT_OUT = common.RESULTS_DIR / "metric_sanity.json"


def degraded_sets(images, labels) -> dict:
    """Name -> (N, 28, 28, 1) images in [-1, 1], in table order."""
    import numpy as np

    from benchmarks import corruptions as c

    sets = {"real (held-out digits)": images}
    sets |= {f"blur sigma={s}": c.gaussian_blur(images, s) for s in (0.5, 1.0, 2.0)}
    sets |= {f"noise std={s}": c.add_gaussian_noise(images, s) for s in (0.1, 0.2, 0.3, 0.5, 1.0)}
    sets["occlusion 12x12"] = c.occlude_center(images)
    sets["single class (100 threes)"] = images[labels == 3]
    rows = np.random.default_rng(0).permutation(len(images))  # the split is sorted by class
    for n in (100, 250, 500):
        sets[f"real, random N={n}"] = images[rows[:n]]
    return sets


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    import numpy as np

    from artifex.evaluation import MNISTQualityMetric
    from artifex.evaluation.digits import load_digits

    metric = MNISTQualityMetric.load()
    images, labels = load_digits("test")
    _, probs = metric.predict(images)
    accuracy = float(np.mean(probs.argmax(axis=1) == labels))

    timings = []
    for _ in range(3):  # the first call compiles the scoring batch size
        start = time.perf_counter()
        metric.score(images)
        timings.append(time.perf_counter() - start)

    rows = []
    for name, x in degraded_sets(images, labels).items():
        rows.append({"set": name, **metric.score(x).as_dict()})
    table = common.format_table(
        ["set", "N", "FID", "KID", "KID se", "IS", "largest class share"],
        [
            [
                r["set"],
                r["num_samples"],
                round(r["fid"], 2),
                round(r["kid"], 4),
                round(r["kid_se"], 4),
                round(r["inception_score"], 2),
                round(max(r["class_histogram"]) / r["num_samples"], 3),
            ]
            for r in rows
        ],
    )
    payload = {
        "benchmark": "metric_sanity",
        "machine": common.machine(),
        "held_out_accuracy": accuracy,
        "recorded_held_out_accuracy": metric.test_accuracy,
        "score_1000_images_first_call_s": round(timings[0], 3),
        "score_1000_images_best_later_s": round(min(timings[1:]), 3),
        "load_average": common.load_average(),
        "results": rows,
    }
    print(f"held-out accuracy {accuracy:.4f} (1,000 offline test digits)")
    print(f"scoring 1,000 images: {timings[0]:.2f} s first call, {min(timings[1:]):.2f} s later")
    print(table)
    print(f"wrote {common.write_json(args.out, payload)}")
    return payload


if __name__ == "__main__":
    main()

"""The DDPM-vs-DDIM example's report: speed-ups, table, summary lines and figure."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from artifex.generative_models.analysis import SamplerResult, SamplerSetting

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples/generative_models/image/diffusion"
sys.path.insert(0, str(EXAMPLE_DIR))
from comparison_report import (  # noqa: E402 - the module lives beside the example
    comparison_table,
    plot_comparison,
    speedups,
    write_report,
)


def fake(scheduler, steps, eta, run_s, fid=None):
    return SamplerResult(SamplerSetting(scheduler, steps, eta), 8, run_s + 2.0, [run_s], fid=fid)


RESULTS = [
    fake("ddpm", 1000, None, 10.0, fid=20.0),
    fake("ddpm", 10, None, 0.1, fid=200.0),
    fake("ddim", 10, 0.0, 0.1, fid=40.0),
    fake("ddim", 10, 1.0, 0.1, fid=90.0),
]


def test_speedups_are_relative_to_the_longest_ddpm_chain():
    np.testing.assert_allclose(speedups(RESULTS), [1.0, 100.0, 100.0, 100.0])
    assert RESULTS[0].compile_s == pytest.approx(2.0)


def test_report_states_measurements(tmp_path):
    figure = plot_comparison(RESULTS, tmp_path / "cmp.png")
    report = write_report(
        RESULTS, tmp_path / "analysis_report.md", context={"model": "tiny"}, figure=figure
    )
    text = report.read_text()
    assert "| DDIM 10 η=0 | 10 | 2.0 | 0.10 | 80.0 | 100.0× | 40.0 | n/a |" in text
    assert (
        "DDIM 10 η=0: 0.10 s against 10.00 s for DDPM 1000, a 100.0× speed-up (FID 40.0 vs 20.0)"
        in text
    )
    assert "DDPM with the same 10 steps: FID 200.0" in text
    assert "](cmp.png)" in text
    no_fid = [fake("ddpm", 4, None, 1.0), fake("ddim", 4, 0.0, 0.5)]
    assert "| n/a | n/a |" in comparison_table(no_fid)

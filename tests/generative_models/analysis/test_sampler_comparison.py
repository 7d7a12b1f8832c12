"""DDPM-vs-DDIM comparison: settings, timing, report and figure."""

from __future__ import annotations

import types

import jax
import numpy as np
import pytest
from PIL import Image

from artifex.generative_models.analysis import (
    SamplerResult,
    SamplerSetting,
    compare_samplers,
    comparison_settings,
)


def test_comparison_settings_cover_steps_and_etas():
    settings = comparison_settings(1000)
    labels = [s.label for s in settings]
    assert labels == [
        "DDPM 10",
        "DDPM 50",
        "DDPM 100",
        "DDPM 1000",
        "DDIM 10 η=0",
        "DDIM 50 η=0",
        "DDIM 100 η=0",
        "DDIM 1000 η=0",
        "DDIM 50 η=0.5",
        "DDIM 50 η=1",
    ]
    small = comparison_settings(50, step_counts=(10, 100), eta_steps=20)
    assert [s.label for s in small] == [
        "DDPM 10",
        "DDPM 50",
        "DDIM 10 η=0",
        "DDIM 50 η=0",
        "DDIM 20 η=0.5",
        "DDIM 20 η=1",
        "DDIM 20 η=0",
    ]


def test_compare_samplers_on_a_tiny_model(tiny_model, tmp_path):
    calls, reported = [], []

    def quality(images):
        calls.append(images.shape)
        return types.SimpleNamespace(fid=float(np.mean(images**2)), kid=0.0)

    settings = [SamplerSetting("ddpm", 3), SamplerSetting("ddim", 3, 0.0)]
    results = compare_samplers(
        tiny_model,
        settings,
        n_samples=4,
        key=jax.random.key(0),
        repeats=1,
        quality=quality,
        grid_dir=tmp_path,
        on_result=lambda r: reported.append(r.setting.label),
    )
    assert reported == ["DDPM 3", "DDIM 3 η=0"]  # each as soon as it was measured
    assert calls == [(4, 8, 8, 1)] * 2
    for r in results:
        assert r.first_call_s >= r.run_s > 0 and len(r.run_times_s) == 1
        assert r.fid is not None and r.fid > 0
        with Image.open(r.grid_path) as img:
            assert img.format == "PNG"
    assert {r["label"] for r in map(SamplerResult.as_dict, results)} == {"DDPM 3", "DDIM 3 η=0"}


def test_compile_time_is_measured_without_extra_runs(tiny_model):
    """repeats=0: one call per setting; JAX's compile events split it into compile + run."""
    setting = SamplerSetting("ddim", 4, 0.0)
    jax.clear_caches()  # another test may have compiled this very program already
    (first,) = compare_samplers(
        tiny_model, [setting], n_samples=3, key=jax.random.key(1), repeats=0
    )
    assert first.run_times_s == []
    assert 0 < first.compile_s < first.first_call_s  # a fresh shape: it had to compile
    assert first.run_s == pytest.approx(first.first_call_s - first.compile_s)
    # The same program again is cached: (almost) nothing to compile.
    (again,) = compare_samplers(
        tiny_model, [setting], n_samples=3, key=jax.random.key(1), repeats=1
    )
    assert again.compile_s < 0.1 * first.compile_s
    with pytest.raises(ValueError, match="repeats=-1"):
        compare_samplers(tiny_model, [setting], n_samples=3, key=jax.random.key(1), repeats=-1)

"""The flat, lazy top-level surface: every name resolves, and importing artifex stays light."""

from __future__ import annotations

import subprocess
import sys

import artifex


def test_every_exported_name_resolves_to_its_full_path_object() -> None:
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.fit import fit

    assert artifex.DDPMModel is DDPMModel and artifex.fit is fit
    for name in artifex.__all__:
        assert getattr(artifex, name) is not None, name
    assert set(artifex.__all__) <= set(dir(artifex))


def test_importing_artifex_loads_no_jax() -> None:
    heavy = "('jax', 'flax', 'tensorflow_datasets')"
    code = f"import sys, artifex; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="has no attribute 'DDIMModel'"):
        _ = artifex.DDIMModel

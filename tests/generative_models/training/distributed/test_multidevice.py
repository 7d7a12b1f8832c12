"""Training, checkpoints and sampling on 4 simulated devices and on 2 processes.

``runner.py`` runs the scenarios in fresh processes (the device count is fixed when JAX
starts); all three processes run at once. The reference is the unchanged single-device
step, ``nnx.jit(trainer.train_step)``, fed the same global batches and keys: data
parallelism must not change the mathematics, only where it runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.training.checkpointing import TrainingCheckpointer
from artifex.generative_models.training.state import TrainState

RUNNER = Path(__file__).resolve().parent / "runner.py"
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}  # float32, summed in a different order


def _load_runner():
    spec = importlib.util.spec_from_file_location("distributed_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(devices: int) -> dict[str, str]:
    flags = f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0"
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Run the 4-device scenario and a 2-process job (2 devices each) side by side."""
    out = tmp_path_factory.mktemp("distributed")
    port = str(_free_port())
    commands = [([sys.executable, str(RUNNER), "devices", str(out)], _env(4))]
    for i in range(2):
        host = ["host", str(out), "--process-id", str(i), "--num-processes", "2", "--port", port]
        commands.append(([sys.executable, str(RUNNER), *host], _env(2)))
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd, env in commands
    ]
    try:
        logs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-4000:]
    return out


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return dict(data)


def _assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], err_msg=name, **TOLERANCE)


@pytest.fixture(scope="module")
def devices(runs: Path) -> dict:
    return json.loads((runs / "devices.json").read_text())


@pytest.mark.parametrize("mode", ["dp4", "fsdp4"])
def test_four_devices_train_like_one(runs: Path, devices: dict, mode: str) -> None:
    reference = _npz(runs / "ref.npz")
    _assert_same_params(_npz(runs / f"{mode}.npz"), reference)
    # The steps did move the parameters, so agreeing is not trivial.
    initial = _load_runner().params(_load_runner().build()[0])
    assert max(np.abs(reference[k] - initial[k]).max() for k in reference) > 1e-3
    np.testing.assert_allclose(devices[f"{mode}_losses"], devices["ref_losses"], rtol=1e-5)
    _assert_same_params(_npz(runs / f"{mode}_ema.npz"), _npz(runs / "ref_ema.npz"))


def test_data_parallel_replicates_and_fsdp_splits_the_state(devices: dict) -> None:
    assert devices["dp4_devices"] == devices["fsdp4_devices"] == [4]
    assert devices["dp4_split_leaves"] == devices["dp4_ema_split_leaves"] == 0
    # FSDP splits the kernels (params, adam mu and nu: 3 copies), and the EMA follows them.
    assert devices["fsdp4_split_leaves"] > 0
    assert devices["fsdp4_split_leaves"] == 3 * devices["fsdp4_ema_split_leaves"]
    assert devices["fsdp_largest_spec"] == "P(None, None, 'data')"


def test_batch_is_split_along_data(devices: dict) -> None:
    assert devices["batch_spec"] == "P('data',)"
    assert devices["batch_shard_shapes"] == [[2, 8, 8, 1]]  # 8 images over 4 devices


def test_sharded_sampling_matches_the_single_device_sampler(devices: dict) -> None:
    assert devices["sample_spec"] == "P('data',)"
    assert devices["sample_max_diff"] < 1e-4


def test_batches_that_do_not_divide_raise_clear_errors(devices: dict) -> None:
    errors = devices["errors"]
    assert "global batch size=6" in errors["shard_batch"] and "4 or 8" in errors["shard_batch"]
    assert "global batch size=6" in errors["global_batch"] and "4 devices" in errors["global_batch"]
    assert "number of samples=6" in errors["sample"] and "device count=4" in errors["sample"]


def _named(tree) -> dict[str, np.ndarray]:
    flat = jax.tree_util.tree_leaves_with_path(tree)
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in flat}


def _restore_on_one_device(runner, directory: Path, ema: tuple[str, ...] = ()) -> TrainState:
    """A freshly built state (one device) with the checkpoint put into it."""
    model, optimizer, _ = runner.build()
    state = TrainState({"model": model}, {"model": optimizer}, ema=ema)
    checkpointer = TrainingCheckpointer(directory)
    restored = checkpointer.restore_latest(state)
    checkpointer.close()
    assert restored.step == runner.STEPS
    return state


def test_checkpoint_from_four_fsdp_devices_restores_on_one(runs: Path) -> None:
    runner = _load_runner()
    state = _restore_on_one_device(runner, runs / "ckpt", ema=("model",))
    assert all(len(x.sharding.device_set) == 1 for x in jax.tree.leaves(nnx.state(state)))
    params = {k: np.asarray(v) for k, v in runner.params(state.model).items()}
    _assert_same_params(params, _npz(runs / "fsdp4.npz"))
    assert int(state.optimizers["model"].step[...]) == runner.STEPS
    _assert_same_params(runner.params(state.ema["model"]), _npz(runs / "fsdp4_ema.npz"))
    assert int(state.ema_count[...]) == runner.STEPS


def test_two_processes_agree_with_each_other_and_with_one_device(runs: Path) -> None:
    infos = [json.loads((runs / f"host{i}.json").read_text()) for i in range(2)]
    for info in infos:
        assert info["process_count"] == 2 and info["device_count"] == 4
        assert info["local_device_count"] == 2 and info["local_batch"] == 4
    host0, host1 = _npz(runs / "host0.npz"), _npz(runs / "host1.npz")
    for name in host0:
        np.testing.assert_array_equal(host0[name], host1[name])  # replicas stay identical
    _assert_same_params(host0, _npz(runs / "ref.npz"))
    np.testing.assert_allclose(infos[0]["losses"], infos[1]["losses"])


def test_checkpoint_written_by_two_hosts_restores_on_one_device(runs: Path) -> None:
    runner = _load_runner()
    state = _restore_on_one_device(runner, runs / "host_ckpt")
    _assert_same_params(runner.params(state.model), _npz(runs / "host0.npz"))


def test_fit_runs_across_two_processes(runs: Path) -> None:
    infos = [json.loads((runs / f"host{i}.json").read_text()) for i in range(2)]
    assert [info["fit_steps"] for info in infos] == [3, 3]
    np.testing.assert_allclose(infos[0]["fit_losses"], infos[1]["fit_losses"])
    assert TrainingCheckpointer(runs / "host_fit" / "checkpoints").all_steps() == [3]


def test_fit_with_the_sharded_step_resumes_on_one_device(runs) -> None:
    """fit drives the FSDP step on 4 devices; its checkpoint (one format for every device
    count) resumes in fit on a single device, and the run ends where 16 single-device steps
    end."""
    result = json.loads((runs / "devices.json").read_text())
    assert result["fit_sharded_steps"] == 5 and result["fit_sharded_split_leaves"] > 0
    assert result["fit_resumed_from"] == 5 and result["fit_resumed_devices"] == [1]
    np.testing.assert_allclose(result["fit_resumed_losses"], result["fit_ref_losses"], **TOLERANCE)
    _assert_same_params(_npz(runs / "fit_resumed.npz"), _npz(runs / "fit_ref.npz"))
    _assert_same_params(_npz(runs / "fit_resumed_ema.npz"), _npz(runs / "fit_ref_ema.npz"))

"""How much memory a sampling call needs, estimated before anything compiles.

A sampler's working set is the network's activations for the whole batch (the scan runs one
network call at a time, so steps do not add up). For the UNet that is, per image, every skip
connection (kept until the up path consumes it), two feature maps at the widest level in
flight, and the ``(HW)^2`` attention matrices of the attention levels. For the tutorial's
models this lies within 25% of the temporary memory XLA:CPU reports for the compiled sampler
(``tests/.../test_sampling_memory.py`` checks it): a request above the memory the device has
left is refused with the figure, instead of failing after minutes of compilation or swapping.
"""

from __future__ import annotations

import os

import jax

#: Feature maps at the widest level alive at once besides the skips (a block's input and
#: its residual branch; XLA fuses the rest).
_WORKING_MAPS = 2


def activation_floats_per_image(backbone, image_shape: tuple[int, int, int]) -> int:
    """Float32 values one ``image_shape`` image keeps alive in one forward pass of the UNet
    of ``backbone`` (a ``UNetBackboneConfig``)."""
    h, w, c = image_shape
    dims = backbone.hidden_dims
    skips = h * w * dims[0]  # conv_in
    widest = h * w * max(dims[0], c)
    attention = 0
    size_h, size_w = h, w
    for i, ch in enumerate(dims):
        level = size_h * size_w * ch
        skips += level * (backbone.num_res_blocks + (i < len(dims) - 1))
        widest = max(widest, level * 2)  # the up path's concatenated input
        if size_h in backbone.attention_resolutions:
            attention = max(attention, (size_h * size_w) ** 2)
        if i < len(dims) - 1:
            size_h, size_w = size_h // 2, size_w // 2
    return skips + _WORKING_MAPS * widest + attention


def sampling_bytes(backbone, shape: tuple[int, ...], *, guided: bool = False) -> int:
    """Estimated bytes of sampling an NHWC ``shape`` batch (guidance doubles the batch)."""
    n, h, w, c = shape
    batch = 2 * n if guided else n
    carry = 3 * n * h * w * c  # x, the multistep memory and the fresh noise
    return 4 * (batch * activation_floats_per_image(backbone, (h, w, c)) + carry)


def available_bytes() -> int | None:
    """Memory the default device has left: free device memory on an accelerator, the
    kernel's ``MemAvailable`` on the CPU; ``None`` when it cannot be told."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_fits(
    backbone, shape: tuple[int, ...], *, guided: bool = False, available: int | None = None
) -> None:
    """Refuse a sampling call whose estimated memory exceeds what the device has left."""
    n = shape[0]
    needed = sampling_bytes(backbone, shape, guided=guided)
    available = available_bytes() if available is None else available
    if available is None or needed <= available:
        return
    per_image = needed / n
    fits = max(1, int(available // per_image))
    unit, scale = ("MiB", 2**20) if per_image >= 2**20 else ("KiB", 2**10)
    raise MemoryError(
        f"sampling n={n:,} images at once needs about {_gib(needed)} "
        f"(~{per_image / scale:,.1f} {unit} per image{' with guidance' if guided else ''}), but "
        f"only {_gib(available)} is free on {jax.devices()[0].platform}; sample in batches of "
        f"at most {fits:,}, e.g. artifex.evaluation.evaluate_generator(..., batch_size="
        f"{min(fits, 250)}) or a loop of model.sample({min(fits, 250)}, key=k)"
    )

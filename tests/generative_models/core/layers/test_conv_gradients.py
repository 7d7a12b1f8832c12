"""conv_general_dilated: XLA's convolution, with the kernel gradient summed over batch chunks."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from artifex.generative_models.core.layers import conv_gradients as cg

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.fixture
def always_chunk(monkeypatch):
    """Split even the small test layers, so the chunked path is what the tests exercise."""
    monkeypatch.setattr(cg, "PIXELS_PER_CHUNK", 16)
    monkeypatch.setattr(cg, "MIN_CHUNK_FLOPS", 1.0)


def _loss(conv, strides, padding):
    def loss(x, kernel):
        y = conv(x, kernel, strides, padding, dimension_numbers=NHWC)
        return jnp.sum(jnp.sin(y) * jnp.arange(y.shape[-1], dtype=y.dtype))

    return loss


@pytest.mark.parametrize(
    ("batch", "size", "cin", "cout", "kernel", "strides", "padding"),
    [
        (8, 8, 3, 5, 3, (1, 1), "SAME"),
        (7, 8, 4, 6, 3, (2, 2), ((1, 1), (1, 1))),  # uneven chunks, stride 2
        (5, 6, 4, 3, 1, (1, 1), "VALID"),  # 1x1 skip convolution
    ],
)
def test_value_and_gradients_match_xla(
    always_chunk, batch, size, cin, cout, kernel, strides, padding
) -> None:
    kx, kw = jax.random.split(jax.random.key(batch * size + cin))
    x = jax.random.normal(kx, (batch, size, size, cin))
    w = jax.random.normal(kw, (kernel, kernel, cin, cout)) / kernel
    ref = jax.jit(jax.value_and_grad(_loss(lax.conv_general_dilated, strides, padding), (0, 1)))
    new = jax.jit(jax.value_and_grad(_loss(cg.conv_general_dilated, strides, padding), (0, 1)))
    (v_ref, (gx_ref, gw_ref)), (v_new, (gx_new, gw_new)) = ref(x, w), new(x, w)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-6)
    np.testing.assert_allclose(gx_new, gx_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gw_new, gw_ref, rtol=2e-5, atol=2e-5)


def test_the_cpu_program_holds_one_convolution_per_chunk(always_chunk) -> None:
    x, w = jnp.ones((8, 8, 8, 3)), jnp.ones((3, 3, 3, 4))
    grad = jax.grad(_loss(cg.conv_general_dilated, (1, 1), "SAME"), (0, 1))
    text = jax.jit(grad).lower(x, w).as_text()
    chunks = cg.chunk_count(8, 64, 2 * w.size)
    assert chunks == 8
    # forward + input gradient + one kernel-gradient convolution per chunk
    assert text.count("stablehlo.convolution") == 2 + chunks


def test_bfloat16_chunks_are_summed_in_float32(always_chunk) -> None:
    x = jax.random.normal(jax.random.key(0), (8, 8, 8, 4)).astype(jnp.bfloat16)
    w = (jax.random.normal(jax.random.key(1), (3, 3, 4, 4)) / 6).astype(jnp.bfloat16)
    new = jax.grad(_loss(cg.conv_general_dilated, (1, 1), "SAME"), 1)(x, w)
    ref = jax.grad(_loss(lax.conv_general_dilated, (1, 1), "SAME"), 1)(
        x.astype(jnp.float32), w.astype(jnp.float32)
    )
    assert new.dtype == jnp.bfloat16
    scale = float(jnp.max(jnp.abs(ref)))
    np.testing.assert_allclose(np.asarray(new, np.float32), ref, atol=0.02 * scale)


def test_chunk_count_splits_only_large_layers() -> None:
    flops_3x3_64 = 2 * 9 * 64 * 64
    assert cg.chunk_count(64, 32 * 32, flops_3x3_64) == cg.MAX_CHUNKS  # tutorial, 32x32
    assert cg.chunk_count(64, 8 * 8, 2 * 9 * 256 * 256) == 4  # ~1,024 positions a chunk
    assert cg.chunk_count(64, 32 * 32, 2 * 9 * 16 * 16) == 2  # CPU preset: barely split
    assert cg.chunk_count(16, 8 * 8, 2 * 9 * 8 * 8) == 1  # tiny layers: XLA's own
    assert cg.chunk_count(3, 64 * 64, flops_3x3_64) == 3  # never more chunks than examples


@pytest.mark.parametrize(("size", "chunks"), [(7, 3), (64, 32), (5, 5), (9, 1)])
def test_chunk_bounds_cover_the_batch_once(size: int, chunks: int) -> None:
    bounds = cg._chunk_bounds(size, chunks)
    assert len(bounds) == chunks
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    lengths = [stop - start for start, stop in bounds]
    assert max(lengths) - min(lengths) <= 1


def test_forward_mode_matches_xla(always_chunk) -> None:
    x = jax.random.normal(jax.random.key(0), (6, 8, 8, 3))
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4)) / 3
    tx, tw = jnp.ones_like(x), jnp.full_like(w, 0.1)

    def run(conv):
        return jax.jvp(
            lambda a, b: conv(a, b, (1, 1), "SAME", dimension_numbers=NHWC), (x, w), (tx, tw)
        )

    (y_new, dy_new), (y_ref, dy_ref) = run(cg.conv_general_dilated), run(lax.conv_general_dilated)
    np.testing.assert_allclose(y_new, y_ref, rtol=1e-6)
    np.testing.assert_allclose(dy_new, dy_ref, rtol=1e-5, atol=1e-5)


def test_other_layouts_match_xla(always_chunk) -> None:
    numbers = ("NCHW", "OIHW", "NCHW")
    x = jax.random.normal(jax.random.key(2), (6, 3, 8, 8))
    w = jax.random.normal(jax.random.key(3), (5, 3, 3, 3)) / 3

    def loss(conv):
        def f(x, w):
            y = conv(x, w, (2, 2), "SAME", dimension_numbers=numbers)
            return jnp.sum(jnp.sin(y) * jnp.arange(y.shape[1], dtype=y.dtype)[:, None, None])

        return jax.jit(jax.value_and_grad(f, (0, 1)))

    (v_new, g_new), (v_ref, g_ref) = (
        loss(cg.conv_general_dilated)(x, w),
        loss(lax.conv_general_dilated)(x, w),
    )
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-6)
    for new, ref in zip(g_new, g_ref, strict=True):
        np.testing.assert_allclose(new, ref, rtol=2e-5, atol=2e-5)


def _scanned_gradients(conv, strides=(1, 1), padding="SAME"):
    """Gradients of a loss summed over microbatches inside a ``lax.scan`` (as in training)."""

    def grads(x, w):
        def body(total, chunk):
            gx, gw = jax.grad(_loss(conv, strides, padding), (0, 1))(chunk, w)
            return total + gw, gx

        gw, gx = lax.scan(body, jnp.zeros_like(w), x.reshape(2, -1, *x.shape[1:]))
        return gx.reshape(x.shape), gw

    return jax.jit(grads)


def test_gradients_in_a_scan_match_xla() -> None:
    x = jax.random.normal(jax.random.key(4), (8, 8, 8, 4))
    w = jax.random.normal(jax.random.key(5), (3, 3, 4, 6)) / 6
    new, ref = (
        _scanned_gradients(cg.conv_general_dilated)(x, w),
        _scanned_gradients(lax.conv_general_dilated)(x, w),
    )
    for a, b in zip(new, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("chunked", [False, True])
def test_cpu_gradients_in_a_scan_are_canonical_convolutions(monkeypatch, chunked) -> None:
    # XLA:CPU runs only b01f_01io->b01f convolutions on its fast kernels, and does not
    # transpose other layouts into it inside loop bodies (the naive loop it falls back to
    # is 10-200x slower); JAX's own derivatives are in other layouts.
    if chunked:
        monkeypatch.setattr(cg, "PIXELS_PER_CHUNK", 16)
        monkeypatch.setattr(cg, "MIN_CHUNK_FLOPS", 1.0)
    x, w = jnp.ones((8, 8, 8, 4)), jnp.ones((3, 3, 4, 6))

    def labels(conv):
        hlo = _scanned_gradients(conv).lower(x, w).compile().as_text()
        return re.findall(r"convolution\(.*?dim_labels=(\S+?),?\s", hlo)

    assert set(labels(lax.conv_general_dilated)) - {"b01f_01io->b01f"}  # the case this fixes
    ours = labels(cg.conv_general_dilated)
    assert len(ours) >= 3
    assert set(ours) == {"b01f_01io->b01f"}


@pytest.mark.parametrize(
    ("padding", "strides", "kernel", "pointwise"),
    [
        ("VALID", (1, 1), 1, True),
        ("SAME", (1, 1), 1, True),
        (((0, 0), (0, 0)), (1, 1), 1, True),
        (((1, 1), (1, 1)), (1, 1), 1, False),  # padded: the border is not a matrix product
        ("VALID", (2, 2), 1, False),
        ("SAME", (1, 1), 3, False),
    ],
)
def test_pointwise_detection(padding, strides, kernel, pointwise) -> None:
    numbers = lax.conv_dimension_numbers((2, 4, 4, 3), (kernel, kernel, 3, 5), NHWC)
    shape = (kernel, kernel, 3, 5)
    assert cg._is_pointwise(shape, numbers, strides, padding, None, None) is pointwise


def test_pointwise_derivatives_are_matrix_products_on_the_cpu() -> None:
    # A 1x1 convolution's derivatives are matrix products of the (positions, channels) views
    # (XLA may turn the forward pass into one too); XLA's own kernel gradient is a
    # convolution whose window is the whole feature map.
    x, w = jnp.ones((4, 8, 8, 6)), jnp.ones((1, 1, 6, 5))

    def program(conv):
        grad = jax.jit(jax.grad(_loss(conv, (1, 1), "VALID"), (0, 1)))
        return grad, grad.lower(x, w).compile().as_text()

    grad, hlo = program(cg.conv_general_dilated)
    assert len(re.findall(r"= f32\[[\d,]+\]\S* convolution\(", hlo)) <= 1  # the forward
    assert re.search(r"= f32\[6,5\]\S* dot\(", hlo)  # the kernel gradient, x.T @ g
    xla_grad, xla_hlo = program(lax.conv_general_dilated)
    assert not re.search(r"= f32\[6,5\]\S* dot\(", xla_hlo)
    for new, ref in zip(grad(x * 0.3, w * 0.2), xla_grad(x * 0.3, w * 0.2), strict=True):
        np.testing.assert_allclose(new, ref, rtol=2e-5, atol=2e-5)


def test_strided_input_gradient_is_a_unit_stride_convolution_on_the_cpu() -> None:
    # A strided convolution's input gradient is the unit-stride one of the cotangent spread
    # onto the input grid (XLA:CPU ran the dilated form slowly); values match XLA's in and
    # out of a scan, "SAME" padding included.
    for padding in (((1, 1), (1, 1)), "SAME", ((0, 1), (0, 1))):
        x = jax.random.normal(jax.random.key(6), (4, 9, 9, 3))
        w = jax.random.normal(jax.random.key(7), (3, 3, 3, 5)) / 3
        ref = jax.jit(jax.grad(_loss(lax.conv_general_dilated, (2, 2), padding), (0, 1)))
        new = jax.jit(jax.grad(_loss(cg.conv_general_dilated, (2, 2), padding), (0, 1)))
        for a, b in zip(new(x, w), ref(x, w), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
        hlo = new.lower(x, w).compile().as_text()
        assert "lhs_dilate" not in hlo
        assert "lhs_dilate" in ref.lower(x, w).compile().as_text()
        scanned = _scanned_gradients(cg.conv_general_dilated, (2, 2), padding)
        scanned_ref = _scanned_gradients(lax.conv_general_dilated, (2, 2), padding)
        for a, b in zip(scanned(x, w), scanned_ref(x, w), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
        labels = re.findall(
            r"convolution\(.*?dim_labels=(\S+?),?\s", scanned.lower(x, w).compile().as_text()
        )
        assert set(labels) == {"b01f_01io->b01f"}


def test_pointwise_derivatives_keep_the_requested_output_type() -> None:
    x = jax.random.normal(jax.random.key(8), (2, 4, 4, 3)).astype(jnp.bfloat16)
    w = jax.random.normal(jax.random.key(9), (1, 1, 3, 5)).astype(jnp.bfloat16)

    def loss(conv):
        def f(x, w):
            y = conv(
                x, w, (1, 1), "VALID", dimension_numbers=NHWC, preferred_element_type=jnp.float32
            )
            assert y.dtype == jnp.float32
            return jnp.sum(jnp.sin(y))

        return jax.grad(f, (0, 1))

    for new, ref in zip(
        loss(cg.conv_general_dilated)(x, w), loss(lax.conv_general_dilated)(x, w), strict=True
    ):
        assert new.dtype == ref.dtype == jnp.bfloat16
        np.testing.assert_allclose(
            np.asarray(new, np.float32), np.asarray(ref, np.float32), rtol=2e-2, atol=2e-2
        )

"""Every fast path in jamba_min.ops equals its reference: values and gradients, irregular shapes,
every dtype it accepts (the scan's backends are tested in test_scan.py and test_triton_scan.py)."""

import pytest
import torch
from scan_helpers import make_inputs

from jamba_min import ops
from jamba_min.attention import causal_attention
from jamba_min.ops.attention import sdpa_attention

TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}


def grads(out, inputs, seed=0):
    """Gradients of a random linear function of ``out`` with respect to ``inputs``."""
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.dtype)
    return torch.autograd.grad(out, inputs, g)


def close(a, b, dtype):
    torch.testing.assert_close(a.float(), b.float(), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2, 7, 5, 4), (1, 1, 3, 1), (3, 13, 6, 3)])  # b, L, c, d_conv
@pytest.mark.parametrize("bias", [True, False])
def test_causal_conv1d_fast_equals_ref(dtype, shape, bias):
    b, L, c, width = shape
    g = torch.Generator().manual_seed(L)
    u = torch.randn(b, L, 2 * c, generator=g).to(dtype)[..., :c].requires_grad_()  # strided
    w = torch.randn(c, width, generator=g).to(dtype).requires_grad_()
    bb = torch.randn(c, generator=g).to(dtype).requires_grad_() if bias else None
    inputs = [t for t in (u, w, bb) if t is not None]
    fast, ref = (ops.causal_conv1d(u, w, bb, backend=k) for k in ("fast", "ref"))
    assert fast.dtype == ref.dtype == dtype
    close(fast, ref, dtype)
    for a, r in zip(grads(fast, inputs), grads(ref, inputs), strict=True):
        close(a, r, dtype)
    # the one-token update is the last output of the convolution over the window
    window = torch.nn.functional.pad(u.detach().transpose(1, 2), (width, 0))[..., -width:]
    step = ops.causal_conv1d_update(window, w.detach(), bb.detach() if bias else None)
    close(step, ref.detach()[:, -1], dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(2, 7, 16), (5, 3), (1, 1, 1, 1)])
def test_rms_norm_fast_equals_ref(dtype, shape):
    g = torch.Generator().manual_seed(len(shape))
    x = (torch.randn(shape, generator=g) * 3).to(dtype).requires_grad_()
    w = torch.randn(shape[-1], generator=g).to(dtype).requires_grad_()
    fast, ref = (ops.rms_norm(x, w, 1e-6, backend=k) for k in ("fast", "ref"))
    assert fast.dtype == ref.dtype == dtype
    close(fast, ref, dtype)
    for a, r in zip(grads(fast, (x, w)), grads(ref, (x, w)), strict=True):
        close(a, r, dtype)
    with torch.no_grad():  # inference takes F.rms_norm
        close(ops.rms_norm(x, w, 1e-6), ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b, d, n", [(2, 5, 3), (1, 1, 1), (3, 8, 16)])
@pytest.mark.parametrize("extras", [{}, dict(D=True, z=True, delta_bias=True, delta_softplus=True)])
def test_selective_state_update_equals_ref_and_one_scan_step(dtype, b, d, n, extras):
    x = make_inputs(b, d, 2, n, dtype=dtype, **extras)
    softplus = extras.get("delta_softplus", False)
    y_scan, h1 = ops.selective_scan_ref(**x, delta_softplus=softplus, return_last_state=True)
    # the state after the first token, then the second token as one step
    _, h0 = ops.selective_scan_ref(**{k: v[..., :1] if v is not None and v.dim() == 3 else v
                                      for k, v in x.items()},
                                   delta_softplus=softplus, return_last_state=True)  # fmt: skip
    token = {k: v[..., 1] if v is not None and v.dim() == 3 else v for k, v in x.items()}
    fused = ops.selective_state_update(h0.detach(), **token, delta_softplus=softplus)
    ref = ops.selective_state_update_ref(h0.detach(), **token, delta_softplus=softplus)
    for a, r, want in zip(fused, ref, (y_scan[..., 1], h1), strict=True):
        assert a.dtype == r.dtype == dtype
        close(a, r, dtype)
        close(a, want, dtype)
    inputs = [v for v in token.values() if v is not None]
    for a, r in zip(grads(fused[0], inputs), grads(ref[0], inputs), strict=True):
        close(a, r, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("H, G", [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("L, T", [(7, 7), (1, 9), (3, 10), (1, 1)])
def test_sdpa_attention_equals_the_written_out_softmax(dtype, H, G, L, T):
    g = torch.Generator().manual_seed(H * 100 + L * 10 + T)
    q = torch.randn(2, H, L, 8, generator=g).to(dtype).requires_grad_()
    k, v = (torch.randn(2, G, T, 8, generator=g).to(dtype).requires_grad_() for _ in range(2))
    fast = sdpa_attention(q, k, v, 8**-0.5)
    ref = causal_attention(q, k.repeat_interleave(H // G, 1), v.repeat_interleave(H // G, 1),
                           8**-0.5)  # fmt: skip
    close(fast, ref, dtype)
    for a, r in zip(grads(fast, (q, k, v)), grads(ref, (q, k, v)), strict=True):
        close(a, r, dtype)


def test_backends_are_checked():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="backend must be one of \\('ref', 'fast'\\)"):
        ops.rms_norm(x, torch.ones(3), 1e-6, backend="triton")
    with pytest.raises(ValueError, match="backend must be one of \\('ref', 'fast'\\)"):
        ops.causal_conv1d(x[None], torch.ones(3, 2), backend="cuda")


def test_compute_dtype():
    pairs = [(torch.float64, torch.float64), (torch.float32, torch.float32),
             (torch.bfloat16, torch.float32), (torch.float16, torch.float32)]  # fmt: skip
    for dtype, want in pairs:
        assert ops.compute_dtype(torch.zeros(1, dtype=dtype)) == want
        assert ops.to_compute(torch.zeros(1, dtype=dtype)).dtype == want


@pytest.mark.parametrize("backend", ["ref", "parallel", "triton", "auto"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_scan_dtypes_are_what_the_dispatcher_documents(backend, dtype):
    """y in u's dtype, the last state in the compute dtype; the Triton kernels, which compute in
    float32, refuse float64 rather than round it (and "auto" never sends float64 to them)."""
    x = {k: v.detach().to(dtype) if v is not None else None
         for k, v in make_inputs(1, 3, 5, 2, D=True).items()}  # fmt: skip
    if backend == "triton" and dtype == torch.float64:
        with pytest.raises(ValueError, match="backend='triton' computes in float32"):
            ops.selective_scan(**x, backend=backend)
        return
    y, h = ops.selective_scan(**x, return_last_state=True, backend=backend)
    assert y.dtype == dtype and h.dtype == ops.compute_dtype(y)

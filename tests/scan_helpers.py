"""Inputs, runners and comparisons shared by the scan tests."""

import torch
from transformers.models.jamba import modeling_jamba

from jamba_min.ops import random_scan_inputs


def make_inputs(
    b,
    d,
    L,
    n,
    dtype=torch.float64,
    seed=0,
    D=False,
    z=False,
    delta_bias=False,
    delta_softplus=False,
    requires_grad=True,
    **_,
):
    """``jamba_min.ops.random_scan_inputs`` with the tests' defaults: float64 leaves that record
    gradients, and only the optional inputs an options dict asks for (the dict may also hold
    ``run``'s options, ignored here)."""
    return random_scan_inputs(
        b, d, L, n, D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
        dtype=dtype, seed=seed, requires_grad=requires_grad,
    )  # fmt: skip


def run(fn, inputs, seed=1, delta_softplus=False, return_last_state=False, **_):
    """Outputs and the gradients of every input of a random linear function of the outputs."""
    out = fn(**inputs, delta_softplus=delta_softplus, return_last_state=return_last_state)
    y, h = out if return_last_state else (out, None)
    g = torch.Generator().manual_seed(seed)
    loss = (y * torch.randn(y.shape, generator=g, dtype=y.dtype)).sum()
    if h is not None:
        loss = loss + (h * torch.randn(h.shape, generator=g, dtype=h.dtype)).sum()
    tensors = {k: v for k, v in inputs.items() if v is not None}
    grads = torch.autograd.grad(loss, list(tensors.values()))
    return y, h, dict(zip(tensors, grads, strict=True))


def hf_scan(**kw):
    return modeling_jamba.mamba_selective_scan(
        **{"hidden_states": kw.pop("u"), "dt": kw.pop("delta"), **kw}
    )


def assert_close(ours, theirs, tol):
    """Agreement to ``tol`` relative to each tensor's scale (sums of L terms round at it)."""
    y, h, grads = ours
    y_ref, h_ref, grads_ref = theirs
    pairs = {"y": (y, y_ref), "last state": (h, h_ref)}
    pairs |= {f"grad of {k}": (g, grads_ref[k]) for k, g in grads.items()}
    for name, (a, b) in pairs.items():
        if b is None:
            continue
        scale = max(1.0, b.abs().max().item())
        torch.testing.assert_close(a, b.to(a.dtype), rtol=tol, atol=tol * scale, msg=name)

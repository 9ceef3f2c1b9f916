"""RMSNorm as an op (chapter 5): the reference formula and the fast paths.

``rms_norm(x, weight, eps)``: x / sqrt(mean(x²) + eps) · weight over the last axis,
``(..., features)`` → ``(..., features)``, as transformers' ``JambaRMSNorm`` computes it: in
float32 (float64 stays float64), the normalised value cast back to x's dtype before the weight
multiplies it.

* ``backend="ref"``: the formula as written.
* ``backend="fast"`` (the default): for float32/float64 inputs in the weight's dtype, the same
  arithmetic in fewer operations: ``F.rms_norm`` when no gradient is needed (a decoding step runs
  ~40 norms), and a backward written out when one is (autograd's is a dozen small ops). Half
  precision takes the reference path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import first_order_only, to_compute

__all__ = ["NORM_BACKENDS", "rms_norm", "rms_norm_ref"]

NORM_BACKENDS = ("ref", "fast")


def rms_norm(x: Tensor, weight: Tensor, eps: float, backend: str = "fast") -> Tensor:
    """RMSNorm over the last axis of ``x`` ``(..., features)`` with ``weight`` ``(features,)``."""
    if backend not in NORM_BACKENDS:
        raise ValueError(f"backend must be one of {NORM_BACKENDS}, got {backend!r}")
    if backend == "ref" or x.dtype not in (torch.float32, torch.float64) or x.dtype != weight.dtype:
        return rms_norm_ref(x, weight, eps)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _RMSNormFunction.apply(x, weight, eps)
    return F.rms_norm(x, weight.shape, weight, eps)


def rms_norm_ref(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """The formula: normalise in the compute dtype, cast back, then scale by ``weight``."""
    x_hi = to_compute(x)
    x_hi = x_hi * torch.rsqrt(x_hi.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x_hi.to(x.dtype)


def _inv_rms(x: Tensor, eps: float) -> Tensor:
    """r = (mean(x²) + eps)^-½ over the last axis, ``(..., 1)``."""
    return torch.rsqrt(torch.linalg.vecdot(x, x).div_(x.shape[-1]).add_(eps)).unsqueeze_(-1)


class _RMSNormFunction(torch.autograd.Function):
    """x̂ ⊙ w with x̂ = x · r, and a backward written out.

    Over the last axis, of size ``features``: ∂ℒ/∂w = Σ g ⊙ x̂ over all leading axes, and
    ∂ℒ/∂x = r · (g_x̂ − x̂ · mean(g_x̂ ⊙ x̂)) with g_x̂ = g ⊙ w. It keeps x (which the residual
    stream holds anyway) and r, one number per vector.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, eps: float) -> Tensor:
        r = _inv_rms(x, eps)
        ctx.save_for_backward(x, weight, r)
        return (x * r).mul_(weight)

    @staticmethod
    @first_order_only("RMSNorm (training path)")
    def backward(ctx, g: Tensor):
        x, weight, r = ctx.saved_tensors
        features = x.shape[-1]
        x_hat = x * r
        g_x = g_w = None
        if ctx.needs_input_grad[0]:
            g_x_hat = g * weight
            mean = torch.linalg.vecdot(g_x_hat, x_hat).div_(features).unsqueeze_(-1)
            g_x = g_x_hat.sub_(x_hat * mean).mul_(r)
        if ctx.needs_input_grad[1]:
            g_w = (g * x_hat).reshape(-1, features).sum(0)
        return g_x, g_w, None

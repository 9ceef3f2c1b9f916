"""RMSNorm, the only normalisation Jamba uses (before every mixer and MLP, and on Δ, B, C)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._autograd import first_order_only

__all__ = ["RMSNorm"]


def _inv_rms(x: Tensor, eps: float) -> Tensor:
    """r = (mean(x²) + eps)^-½ over the last axis, ``(..., 1)``."""
    return torch.rsqrt(torch.linalg.vecdot(x, x).div_(x.shape[-1]).add_(eps)).unsqueeze_(-1)


class _RMSNormFunction(torch.autograd.Function):
    """x̂ ⊙ w with x̂ = x · r, and a backward written out (autograd's is a dozen small ops).

    Over the last axis, of size n: ∂L/∂w = Σ g ⊙ x̂ over all leading axes, and
    ∂L/∂x = r · (g_x̂ − x̂ · mean(g_x̂ ⊙ x̂)) with g_x̂ = g ⊙ w. It keeps x (which the residual
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
        n = x.shape[-1]
        x_hat = x * r
        g_x = g_w = None
        if ctx.needs_input_grad[0]:
            g_x_hat = g * weight
            mean = torch.linalg.vecdot(g_x_hat, x_hat).div_(n).unsqueeze_(-1)
            g_x = g_x_hat.sub_(x_hat * mean).mul_(r)
        if ctx.needs_input_grad[1]:
            g_w = (g * x_hat).reshape(-1, n).sum(0)
        return g_x, g_w, None


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight over the last axis, computed in float32 (or float64).

    Mirrors transformers' ``JambaRMSNorm``: the normalised value is cast back to the input dtype
    before the weight multiplies it. Differs for float64 inputs, which stay in float64 (transformers
    rounds them through float32). Shapes: ``(..., dim)`` → ``(..., dim)``.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype in (torch.float32, torch.float64) and x.dtype == self.weight.dtype:
            # the same arithmetic as below, in fewer operations (a decoding step runs ~40 norms)
            if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
                return _RMSNormFunction.apply(x, self.weight, self.eps)
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        x32 = x if x.dtype == torch.float64 else x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.eps}"

"""RMSNorm, the only normalisation Jamba uses (before every mixer and MLP, and on Δ, B, C)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RMSNorm"]


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
            # the same arithmetic as below in one call (a decoding step runs ~40 norms)
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        x32 = x if x.dtype == torch.float64 else x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.eps}"

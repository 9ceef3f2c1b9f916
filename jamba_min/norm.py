"""RMSNorm, the only normalisation Jamba uses (before every mixer and MLP, and on Δ, B, C)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .ops import rms_norm

__all__ = ["RMSNorm"]


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight over the last axis, computed in float32 (or float64).

    Mirrors transformers' ``JambaRMSNorm``: the normalised value is cast back to the input dtype
    before the weight multiplies it. Differs for float64 inputs, which stay in float64 (transformers
    rounds them through float32). Shapes: ``(..., dim)`` → ``(..., dim)``. The arithmetic is the
    op :func:`jamba_min.ops.rms_norm`.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.eps}"

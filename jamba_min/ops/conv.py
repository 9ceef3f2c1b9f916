"""The depthwise causal convolution of the Mamba layer (chapter 5): reference and fast path.

Time-major shapes, as the Mamba layer holds its tensors: u ``(b, L, d_inner)``, weight
``(d_inner, d_conv)``, bias ``(d_inner,)`` → y ``(b, L, d_inner)``, with
y_t = bias + Σ_i weight[:, i] ⊙ u_{t - d_conv + 1 + i} (u_t = 0 before the start).

* ``backend="ref"``: ``F.conv1d`` with ``d_conv - 1`` zeros of padding on the left, as
  chapter 5 derives it.
* ``backend="fast"`` (the default): ``d_conv`` multiply-adds over whole time-major rows with a
  hand-written backward; on a CPU this beats oneDNN's depthwise kernel and needs no transposes.

Both compute in float32 for half-precision inputs (float64 stays float64) and return ``u``'s
dtype. :func:`causal_conv1d_update` is the single-token step that decoding uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import first_order_only, to_compute

__all__ = ["CONV_BACKENDS", "causal_conv1d", "causal_conv1d_ref", "causal_conv1d_update"]

CONV_BACKENDS = ("ref", "fast")


def causal_conv1d(
    u: Tensor, weight: Tensor, bias: Tensor | None = None, backend: str = "fast"
) -> Tensor:
    """Depthwise causal convolution, ``(b, L, d_inner)`` → ``(b, L, d_inner)``; see above."""
    if backend not in CONV_BACKENDS:
        raise ValueError(f"backend must be one of {CONV_BACKENDS}, got {backend!r}")
    args = [None if t is None else to_compute(t) for t in (u, weight, bias)]
    fn = causal_conv1d_ref if backend == "ref" else _CausalConv.apply
    return fn(*args).to(u.dtype)


def causal_conv1d_ref(u: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The reference: ``F.conv1d`` over ``(b, d_inner, L)``, ``d_conv - 1`` zeros on the left."""
    c, width = weight.shape
    y = F.conv1d(F.pad(u.transpose(1, 2), (width - 1, 0)), weight[:, None], bias, groups=c)
    return y.transpose(1, 2)


def causal_conv1d_update(window: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The convolution's output for the newest input: ``window`` ``(b, d_inner, d_conv)`` holds
    the last ``d_conv`` inputs, oldest first; returns ``(b, d_inner)``."""
    y = torch.linalg.vecdot(window, weight)  # Σ_j weight[:, j] · window[:, :, j]
    return y + bias if bias is not None else y


class _CausalConv(torch.autograd.Function):
    """``d_conv`` multiply-adds over contiguous time-major rows, forward and backward.

    u: ``(b, L, d_inner)`` (any strides), weight ``(d_inner, d_conv)``, bias ``(d_inner,)`` or None.
    """

    @staticmethod
    def forward(ctx, u: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        width, L = weight.shape[1], u.shape[1]
        # (d_conv, c): w[j] multiplies the input d_conv - 1 - j steps back; contiguous, because
        # a strided w[j] makes each multiply-add ~3x slower
        w = weight.t().contiguous()
        u_pad = F.pad(u, (0, 0, width - 1, 0))  # (b, L + d_conv - 1, c), zeros before the start
        y = u_pad[:, width - 1 :] * w[width - 1]
        for j in range(width - 1):
            y.addcmul_(u_pad[:, j : j + L], w[j])
        if bias is not None:
            y += bias
        ctx.save_for_backward(u_pad, w)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @first_order_only("causal_conv1d")
    def backward(ctx, g: Tensor):
        u_pad, w = ctx.saved_tensors  # w: (d_conv, c), as in the forward
        width, L = w.shape[0], g.shape[1]
        g_u = g_w = g_bias = None
        if ctx.needs_input_grad[0]:
            g_pad = F.pad(g, (0, 0, 0, width - 1))  # (b, L + d_conv - 1, c), zeros after the end
            g_u = g * w[width - 1]  # u_t reaches y_{t + d_conv - 1 - j} through w[j]
            for j in range(width - 1):
                g_u.addcmul_(g_pad[:, width - 1 - j : width - 1 - j + L], w[j])
        if ctx.needs_input_grad[1]:
            g_w = torch.stack([(g * u_pad[:, j : j + L]).sum((0, 1)) for j in range(width)], dim=1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            g_bias = g.sum((0, 1))
        return g_u, g_w, g_bias

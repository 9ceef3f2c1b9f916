"""What every op shares: the compute dtype, and a guard for hand-written backwards."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["cast", "compute_dtype", "first_order_only", "to_compute"]


def compute_dtype(t: Tensor) -> torch.dtype:
    """The dtype the state-space ops compute in: float32, or float64 for float64 inputs."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def to_compute(t: Tensor) -> Tensor:
    """``t`` in its compute dtype (half precision is widened; float32 and float64 stay)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()  # (a no-op .to costs)


def cast(t: Tensor, dtype: torch.dtype) -> Tensor:
    """``t.to(dtype)``, skipping the call when ``t`` has it already (a decoding step makes
    hundreds of such calls, and a no-op ``.to`` costs as much as a small kernel)."""
    return t if t.dtype == dtype else t.to(dtype)


def first_order_only(what: str, instead: str = "") -> Callable:
    """Decorate an ``autograd.Function.backward`` that gives first derivatives only.

    Such a backward computes its gradients from tensors saved in the forward, outside autograd's
    view, so differentiating it again (``create_graph=True``, for second derivatives) would give
    wrong or missing terms without a word. It raises instead, naming ``what`` and, if given, the
    path to take ``instead``.
    """

    def wrap(backward: Callable) -> Callable:
        @functools.wraps(backward)
        def guarded(ctx, *grads):
            if torch.is_grad_enabled():  # only with create_graph=True inside a backward
                hint = f"; {instead}" if instead else ""
                raise RuntimeError(
                    f"{what} has a hand-written backward that gives first derivatives only: it "
                    f"cannot be differentiated again (backward with create_graph=True){hint}"
                )
            return backward(ctx, *grads)

        return guarded

    return wrap

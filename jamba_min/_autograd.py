"""A guard for the hand-written backwards of the fast paths (RMSNorm, causal conv, scans)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch


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

"""Graders of chapter 4, a Triton scan kernel: a running sum, and a recurrence run backwards.

Any implementation passes if its values are right; the chapter writes them as Triton kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._common import call, compare_tensors, gen, grader

__all__ = ["check_cumsum", "check_reverse_recurrence"]

_ROWS_AND_LENGTHS = [(1, 1), (3, 7), (5, 100), (2, 129)]  # irregular on purpose


@grader
def check_cumsum(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Grade ``fn(x) -> y``: the cumulative sum along the last axis of ``x`` (rows, L), float32."""
    name = "check_cumsum"
    cases = []
    for seed, (rows, L) in enumerate(_ROWS_AND_LENGTHS):
        x = torch.randn(rows, L, generator=gen(seed))
        label = f"rows={rows}, L={L}"
        cases.append((label, call(name, label, fn, x), torch.cumsum(x.double(), -1)))
    compare_tensors(name, cases, tol=1e-5)


@grader
def check_reverse_recurrence(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Grade ``fn(a, x) -> h``: h_t = a_{t+1} h_{t+1} + x_t along the last axis, from the end.

    a, x: ``(rows, L)`` float32; h_{L-1} = x_{L-1}, and a_0 is never used. This is the adjoint
    recurrence of h_t = a_t h_{t-1} + x_t: with ``x`` the gradient of a loss with respect to
    every state, ``h`` is the full gradient with respect to every input ``x_t`` (chapter 4).
    """
    name = "check_reverse_recurrence"
    cases = []
    for seed, (rows, L) in enumerate([*_ROWS_AND_LENGTHS, (4, 2)]):
        g = gen(seed)
        a, x = torch.rand(rows, L, generator=g), torch.randn(rows, L, generator=g)
        want = torch.empty(rows, L, dtype=torch.float64)
        h = torch.zeros(rows, dtype=torch.float64)
        for t in reversed(range(L)):
            a_next = a[:, t + 1].double() if t + 1 < L else torch.zeros(rows, dtype=torch.float64)
            h = a_next * h + x[:, t].double()
            want[:, t] = h
        label = f"rows={rows}, L={L}"
        cases.append((label, call(name, label, fn, a, x), want))
    compare_tensors(name, cases, tol=1e-5)

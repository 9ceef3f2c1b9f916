"""Graders of chapter 3, scanning in parallel: a chunked scan, and a scan of matrix steps."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._common import call, compare_tensors, gen, grader

__all__ = ["check_chunked_scan", "check_matrix_scan"]


@grader
def check_chunked_scan(fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """Grade ``fn(a, x, chunk) -> h``: h_t = a_t h_{t-1} + x_t (h_{-1} = 0) along dim 0.

    a, x: ``(L, …)``; ``chunk`` need not divide L and may exceed it (chapter 3).
    """
    name = "check_chunked_scan"
    cases = []
    for seed, (L, chunk) in enumerate([(1, 1), (10, 3), (64, 8), (100, 7), (5, 16)]):
        g = gen(seed)
        a = torch.rand(L, 2, 3, generator=g, dtype=torch.float64)
        x = torch.randn(L, 2, 3, generator=g, dtype=torch.float64)
        want, h = torch.empty_like(x), torch.zeros_like(x[0])
        for t in range(L):
            h = a[t] * h + x[t]
            want[t] = h
        label = f"L={L}, chunk={chunk}"
        cases.append((label, call(name, label, fn, a, x, chunk), want))
    compare_tensors(name, cases)


@grader
def check_matrix_scan(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Grade ``fn(M, x) -> h``: h_t = M_t h_{t-1} + x_t along dim 0 (h_{-1} = 0), M_t a matrix.

    M: ``(L, n, n)``; x, h: ``(L, n)``; float64. Unlike the diagonal Ā of the selective scan, the
    matrices do not commute, so composing two steps in the wrong order gives wrong states. The
    cases include L = 1, n = 1, lengths that are not powers of two, and rotations (chapter 3).
    """
    name = "check_matrix_scan"
    cases = []
    for seed, (L, n) in enumerate([(1, 1), (1, 3), (10, 2), (37, 3), (64, 4)]):
        g = gen(seed)
        M = torch.randn(L, n, n, generator=g, dtype=torch.float64) / (2 * n**0.5)
        if n == 2:  # damped rotations: complex eigenvalues
            angle = torch.rand(L, generator=g, dtype=torch.float64) * 3
            c, s = torch.cos(angle), torch.sin(angle)
            M = 0.9 * torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        x = torch.randn(L, n, generator=g, dtype=torch.float64)
        want, h = torch.empty_like(x), torch.zeros(n, dtype=torch.float64)
        for t in range(L):
            h = M[t] @ h + x[t]
            want[t] = h
        label = f"L={L}, n={n}" + (", rotations" if n == 2 else "")
        cases.append((label, call(name, label, fn, M, x), want))
    compare_tensors(name, cases)

"""Graders of chapter 2, the selective scan: a moving average, the scan without a loop over
time, and the scan from a given state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..ops import selective_scan
from ._common import call, compare_tensors, gen, grader

__all__ = ["check_ema", "check_scan_from_state", "check_selective_scan"]


@grader
def check_ema(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Grade ``fn(x, alpha) -> y``: y_t = α y_{t-1} + (1 − α) x_t, y_{-1} = 0; x: ``(L,)``."""
    name = "check_ema"
    cases = []
    for seed, (L, alpha) in enumerate([(1, 0.5), (10, 0.9), (100, 0.0), (50, 1.0)]):
        x = torch.randn(L, generator=gen(seed), dtype=torch.float64)
        want, y = torch.empty_like(x), 0.0
        for t in range(L):
            y = alpha * y + (1 - alpha) * x[t].item()
            want[t] = y
        label = f"L={L}, alpha={alpha}"
        cases.append((label, call(name, label, fn, x, alpha), want))
    compare_tensors(name, cases)


def _inputs(seed: int, b: int, d: int, L: int, n: int) -> tuple[torch.Tensor, ...]:
    """Random float64 scan inputs (u, delta, A, B, C, D), Δ as given (no bias, no softplus)."""
    g = gen(seed)
    u = torch.randn(b, d, L, generator=g, dtype=torch.float64)
    delta = torch.rand(b, d, L, generator=g, dtype=torch.float64) * 0.5
    A = -torch.rand(d, n, generator=g, dtype=torch.float64) * 3 - 0.1
    B, C = (torch.randn(b, n, L, generator=g, dtype=torch.float64) for _ in range(2))
    D = torch.randn(d, generator=g, dtype=torch.float64)
    return u, delta, A, B, C, D


@grader
def check_selective_scan(fn: Callable[..., torch.Tensor]) -> None:
    """Grade ``fn(u, delta, A, B, C, D) -> y``: the selective scan, Δ used as given (chapter 2).

    Shapes as :func:`jamba_min.selective_scan`; compared with its ``"ref"`` backend in float64,
    on sizes that include L = 1, batch 1, one state, and Δ large enough that an off-by-one in
    the sum of step sizes shows.
    """
    name = "check_selective_scan"
    cases = []
    sizes = [(1, 1, 1, 1), (2, 3, 17, 4), (1, 5, 40, 16), (3, 2, 9, 1)]
    for seed, (b, d, L, n) in enumerate(sizes):
        args = _inputs(seed, b, d, L, n)
        want = selective_scan(*args, backend="ref")
        label = f"(batch, d_inner, L, d_state) = {(b, d, L, n)}"
        cases.append((label, call(name, label, fn, *args), want))
    compare_tensors(name, cases)


@grader
def check_scan_from_state(fn: Callable[..., Any]) -> None:
    """Grade ``fn(u, delta, A, B, C, D, initial_state) -> (y, last_state)``: the selective scan
    started from a given state h_0 ``(batch, d_inner, d_state)`` (chapter 2).

    Checked through the cut property: for a sequence split in two, the package's scan of the
    whole sequence must equal the package's scan of the first part followed by ``fn`` on the
    second part, started from the first part's last state (outputs and last state). The cases
    include a zero state, a continuation of one token, and batch 1.
    """
    name = "check_scan_from_state"
    cases = []
    sizes = [(1, 1, 5, 1, 1), (2, 3, 12, 7, 4), (1, 4, 20, 13, 6), (3, 2, 0, 8, 3)]
    for seed, (b, d, L0, L1, n) in enumerate(sizes):
        u, delta, A, B, C, D = _inputs(100 + seed, b, d, L0 + L1, n)
        y_all, h_all = selective_scan(u, delta, A, B, C, D, return_last_state=True, backend="ref")
        if L0 == 0:
            h0 = torch.zeros(b, d, n, dtype=torch.float64)
        else:
            head = (u[..., :L0], delta[..., :L0], A, B[..., :L0], C[..., :L0], D)
            _, h0 = selective_scan(*head, return_last_state=True, backend="ref")
        rest = (u[..., L0:], delta[..., L0:], A, B[..., L0:], C[..., L0:], D, h0)
        start = "a zero state" if L0 == 0 else f"the state after {L0} tokens"
        tokens = f"{L1} token{'s' * (L1 != 1)}"
        label = f"(batch, d_inner, d_state) = {(b, d, n)}, {tokens} from {start}"
        cases.append((label, call(name, label, fn, *rest), (y_all[..., L0:], h_all)))
    compare_tensors(name, cases)

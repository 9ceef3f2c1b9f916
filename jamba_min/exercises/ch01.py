"""Graders of chapter 1, state space models: discretisation and the Euler shortcut for B."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._common import call, compare_tensors, gen, grader
from .general import key_facts

__all__ = ["check_discretize", "check_euler_answer"]


@grader
def check_discretize(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Any]) -> None:
    """Grade ``fn(A, B, delta) -> (A_bar, B_bar)``: zero-order-hold discretisation (chapter 1).

    A, B: ``(d_inner, N)`` (A diagonal per channel, negative); delta: ``(d_inner,)``, one step
    size per channel. Expected, elementwise: Ā = exp(ΔA) and B̄ = (exp(ΔA) − 1)/(ΔA) · ΔB. The
    cases include d_inner = N (where a Δ broadcast along the wrong axis goes unnoticed by the
    shapes) and step sizes of 1e-10, where exp(ΔA) − 1 loses most of its digits and
    ``torch.expm1`` does not; there B is scaled by 1/Δ so that B̄ is of order one.
    """
    name = "check_discretize"
    cases = []
    settings = [(1, 1, 1.0), (4, 4, 1.0), (3, 5, 1.0), (8, 16, 1.0), (6, 3, 1e-10)]
    for seed, (d_inner, N, scale) in enumerate(settings):
        g = gen(seed)
        A = -torch.rand(d_inner, N, generator=g, dtype=torch.float64) * 4 - 0.1
        delta = (torch.rand(d_inner, generator=g, dtype=torch.float64) + 0.01) * scale
        B = torch.randn(d_inner, N, generator=g, dtype=torch.float64) / scale
        dA = delta[:, None] * A
        want = (torch.exp(dA), torch.expm1(dA) / dA * delta[:, None] * B)
        label = f"d_inner={d_inner}, N={N}, Δ of order {scale:g}"
        try:
            got = call(name, label, fn, A, B, delta)
        except (RuntimeError, IndexError) as e:  # shapes that do not broadcast
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise AssertionError(f"{name}: for {label}, your function failed: {first}") from e
        cases.append((label, got, want))
    compare_tensors(name, cases)


@grader
def check_euler_answer(answer: str) -> None:
    """Grade the explanation of why Euler's B̄ = ΔB is harmless in a time-invariant SSM and not
    once Δ depends on the token (chapter 1)."""
    key_facts(
        "check_euler_answer",
        answer,
        [
            (
                "that with a fixed Δ the two differ by a constant factor per state "
                "(ΔA / (exp(ΔA) − 1), the same at every step)",
                [r"constant", r"fixed", r"same (factor|gain|scal|ratio)", r"does not change",
                 r"every step", r"per state"],
            ),
            (
                "what absorbs that factor (a learned B or C, rescaled to match)",
                [r"absorb", r"learn", r"rescal", r"compensat", r"fold"],
            ),
            (
                "why this fails with a token-dependent Δ (the factor then changes from step "
                "to step, so no single rescaling of B or C matches it)",
                [r"chang", r"vary", r"varies", r"differ\w* (at|from|for|per|with) (each|every)",
                 r"per (step|token)", r"each (step|token)", r"depends? on the token"],
            ),
        ],
    )  # fmt: skip

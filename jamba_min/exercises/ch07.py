"""Graders of chapter 7, mixture of experts: top-K routing with a capacity per expert, and the
explanation of why a router that is not confident can still be unbalanced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._common import call, compare_tensors, gen, grader
from .general import key_facts

__all__ = ["check_imbalance_answer", "check_route_with_capacity"]


def _route_with_capacity(logits: torch.Tensor, k: int, capacity: int) -> tuple:
    """The reference, one assignment at a time: first choices first, in token order."""
    from ..moe import route

    weights, experts = route(logits, k)
    taken = [0] * logits.shape[-1]
    keep = torch.zeros_like(weights, dtype=torch.bool)
    for slot in range(k):
        for t in range(logits.shape[0]):
            e = int(experts[t, slot])
            if taken[e] < capacity:
                taken[e] += 1
                keep[t, slot] = True
    return weights * keep, experts


@grader
def check_route_with_capacity(fn: Callable[[torch.Tensor, int, int], Any]) -> None:
    """Grade ``fn(logits, k, capacity) -> (weights, experts)``: top-K routing with a capacity.

    logits: ``(tokens, n)``. The experts and weights of Jamba's routing
    (:func:`jamba_min.moe.route`: softmax over all n experts in float32 at least, the K largest
    probabilities, largest first, **not** renormalised), except that each expert accepts at
    most ``capacity`` assignments: every token's first choice is served before any second
    choice, in token order within a choice, and an assignment beyond the capacity gets weight 0
    (its expert id stays). Both ``(tokens, K)``; weights in the dtype of ``logits``, experts
    int64 (chapter 7). The cases include capacity 0, a capacity nothing reaches, K = n, a
    single token, and an expert that every token prefers.
    """
    name = "check_route_with_capacity"
    cases = []
    settings = [  # (tokens, n, K, capacity, bias on expert 0, dtype)
        (1, 2, 1, 1, 0.0, torch.float64),
        (10, 4, 2, 3, 0.0, torch.float64),
        (100, 16, 2, 13, 0.0, torch.float64),  # capacity factor 1: 100 · 2 / 16 ≈ 13
        (40, 8, 2, 6, 3.0, torch.float64),  # expert 0 is everybody's first choice
        (7, 5, 5, 4, 0.0, torch.float64),  # K = n
        (20, 4, 2, 0, 0.0, torch.float64),  # capacity 0: everything dropped
        (30, 6, 3, 100, 0.0, torch.float64),  # nothing dropped: Jamba's routing
        (25, 4, 2, 8, 1.0, torch.float32),
    ]
    for seed, (tokens, n, k, capacity, bias, dtype) in enumerate(settings):
        logits = torch.randn(tokens, n, generator=gen(seed), dtype=torch.float64)
        logits[:, 0] += bias
        logits = logits.to(dtype)
        weights, experts = _route_with_capacity(logits, k, capacity)
        label = f"tokens={tokens}, n={n}, K={k}, capacity={capacity}, {dtype}"
        got = call(name, label, fn, logits, k, capacity)
        if isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[1], torch.Tensor):
            if got[1].dtype.is_floating_point:
                raise AssertionError(
                    f"{name}: for {label}, the experts should be integer ids, got {got[1].dtype}"
                )
            got = (got[0], got[1].double())
        cases.append((label, got, (weights, experts.double())))
    compare_tensors(name, cases, tol=1e-6)


@grader
def check_imbalance_answer(answer: str) -> None:
    """Grade the explanation of why a router at initialisation, almost uniform, still loads the
    experts unevenly (chapter 7).

    The key facts: the router sees only the hidden state, so every copy of a token goes to the
    same experts; tokens are not equally frequent (a frequent one, like the space, loads its
    experts with all its copies); the top K is decided by small differences, so a router need
    not be confident to be unbalanced.
    """
    key_facts(
        "check_imbalance_answer",
        answer,
        [
            (
                "that equal tokens (equal hidden states) always go to the same experts",
                [
                    r"\bsame\b",
                    r"identical",
                    r"\bequal\b",
                    r"every (copy|occurrence)",
                    r"each (copy|occurrence)",
                    r"determinist",
                ],
            ),
            (
                "that some tokens are much more frequent than others (the space, common letters)",
                [r"frequen", r"common", r"\bspaces?\b", r"often", r"repeat", r"occur"],
            ),
            (
                "that the top K is decided by small differences in the probabilities, so "
                "confidence is not needed for imbalance",
                [
                    r"small",
                    r"tiny",
                    r"slight",
                    r"close",
                    r"nearly",
                    r"almost",
                    r"not (need|have) to be confident",
                ],
            ),
        ],
    )

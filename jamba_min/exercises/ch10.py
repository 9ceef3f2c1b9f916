"""Graders of chapter 10, hybrid vs pure: the induction measure and the recall explanation."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..ablation import induction_mass
from ._common import call, compare_tensors, gen, grader
from .general import key_facts

__all__ = ["check_induction_mass", "check_recall_answer"]


@grader
def check_induction_mass(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Grade ``fn(weights, input_ids, queries) -> (H,)``: one layer's induction measure.

    weights: ``(b, H, L, L)`` attention weights; input_ids: ``(b, L)``; queries: ``(b, L)``
    bool. For each marked position t, s is the *latest* earlier position holding the same token,
    and the answer is ω_{t, s+1} averaged over all marked positions of all rows, per head
    (:func:`jamba_min.ablation.induction_mass` for one layer). The cases include tokens that
    occur several times before t, where the first occurrence is the wrong one.
    """
    name = "check_induction_mass"
    g = gen(10)
    cases = []

    def add(label: str, w: torch.Tensor, x: torch.Tensor, q: torch.Tensor) -> None:
        want = induction_mass({0: w}, x, q)[0]
        cases.append((label, call(name, label, fn, w, x, q), want))

    # MQAR-like: pairs, then each key once more
    x = torch.tensor([[3, 40, 5, 41, 7, 42, 5, 41, 3, 40, 7, 42]])
    q = torch.zeros_like(x, dtype=torch.bool)
    q[0, [6, 8, 10]] = True
    w = torch.rand(1, 2, 12, 12, generator=g).tril()
    add("one MQAR-like sequence, 2 heads", w / w.sum(-1, keepdim=True), x, q)
    # a token seen twice before: the latest occurrence counts, not the first
    x = torch.tensor([[9, 1, 9, 2, 8, 9, 4]])
    q = torch.tensor([[False, False, False, False, False, True, False]])
    w = torch.rand(1, 3, 7, 7, generator=g).tril().softmax(-1)
    add("a token that occurred twice before the query", w, x, q)
    # a batch of repeated random sequences, queries in the repeat only
    b, half, H = 3, 6, 4
    first = torch.stack([torch.randperm(30, generator=g)[:half] for _ in range(b)])
    x = torch.cat([first, first], dim=1)
    q = (torch.arange(2 * half) >= half).expand(b, -1).clone()
    w = torch.rand(b, H, 2 * half, 2 * half, generator=g).tril().softmax(-1)
    add(f"{b} repeated sequences, {H} heads", w, x, q)
    # rows with different numbers of queries: the mean is over queries, not over rows
    x = torch.tensor([[1, 2, 1, 2, 1, 2], [5, 6, 7, 8, 5, 0]])
    q = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 0]], dtype=torch.bool)
    w = torch.rand(2, 2, 6, 6, generator=g).tril().softmax(-1)
    add("rows with 4 and 1 queries", w, x, q)
    compare_tensors(name, cases, tol=1e-6)


@grader
def check_recall_answer(answer: str) -> None:
    """Grade the explanation of why one attention layer alone cannot do MQAR's lookup, and what
    the Mamba layers below it in the hybrid supply (chapter 10)."""
    key_facts(
        "check_recall_answer",
        answer,
        [
            (
                "that the position to read (the value, after the key's earlier occurrence) "
                "holds nothing about the key by its own content",
                [r"value", r"s ?\+ ?1", r"after", r"next"],
            ),
            (
                "what that position must carry first (which token came before it)",
                [r"previous", r"preced", r"before it", r"prior", r"came before", r"shift"],
            ),
            (
                "which layer supplies it in the hybrid (the Mamba layers, e.g. their "
                "convolution or recurrence)",
                [r"mamba", r"conv", r"recurren", r"ssm", r"state"],
            ),
        ],
    )

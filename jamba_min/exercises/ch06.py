"""Graders of chapter 6, attention: grouped-query attention of new tokens against a cache, and
the explanation of why Jamba's attention needs no positional encoding."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._common import call, compare_tensors, gen, grader
from .general import key_facts

__all__ = ["check_cached_attention", "check_position_answer"]


@grader
def check_cached_attention(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Grade ``fn(q, k, v) -> out``: causal grouped-query attention of L new tokens.

    q: ``(b, H, L, d_h)``; k, v: ``(b, G, T, d_h)`` with T ≥ L and G dividing H. The L queries
    are the last L of the T positions, so query i sees keys 0 … T − L + i; query head h reads
    key-value head h // (H / G); scale d_h^-½; no positions. out: ``(b, H, L, d_h)``, as
    :func:`jamba_min.ops.attention.sdpa_attention` computes it (chapter 6). The cases, in
    float64, include L = T (a prefill), L = 1 (a decoding step), a chunk of new tokens against
    a longer cache, MHA (G = H) and MQA (G = 1).
    """
    from ..attention import causal_attention

    name = "check_cached_attention"
    cases = []
    settings = [  # (b, H, G, L, T, d_h)
        (1, 1, 1, 1, 1, 4),  # one token, nothing cached
        (2, 4, 2, 5, 5, 8),  # a prefill: L = T
        (1, 6, 3, 3, 10, 8),  # 3 new tokens against 7 cached ones
        (2, 8, 2, 1, 7, 16),  # a decoding step
        (1, 3, 3, 4, 6, 5),  # MHA, odd head size
        (3, 4, 1, 2, 9, 4),  # MQA
    ]
    for seed, (b, H, G, L, T, d_h) in enumerate(settings):
        g = gen(seed)
        q = torch.randn(b, H, L, d_h, generator=g, dtype=torch.float64)
        k, v = (torch.randn(b, G, T, d_h, generator=g, dtype=torch.float64) for _ in range(2))
        k_full, v_full = (t.repeat_interleave(H // G, dim=1) for t in (k, v))
        want = causal_attention(q, k_full, v_full, scale=d_h**-0.5)
        label = f"(b, H, G, L, T, d_h) = {(b, H, G, L, T, d_h)}"
        cases.append((label, call(name, label, fn, q, k, v), want))
    compare_tensors(name, cases)


@grader
def check_position_answer(answer: str) -> None:
    """Grade the explanation of why Jamba's attention layers need no positional encoding
    (chapter 6).

    The key facts: attention by itself is blind to order (a weighted sum whose weights come from
    content, so shuffling the earlier tokens changes nothing: it sees a set), and Jamba's
    attention layers read the outputs of Mamba layers, whose recurrence (or convolution) makes
    each output depend on the order of the tokens before it.
    """
    key_facts(
        "check_position_answer",
        answer,
        [
            (
                "that attention alone cannot tell the order of its context (it sees a set: "
                "permuting the earlier tokens permutes the scores and values alike)",
                [
                    r"\bsets?\b",
                    r"permut",
                    r"shuffl",
                    r"reorder",
                    r"order[- ](blind|invariant|agnostic)",
                    r"(ignores|blind to|cannot tell|can't tell|does not see|doesn't see|no).{0,30}"
                    r"(order|position)",
                ],
            ),
            (
                "where the order comes from in Jamba (the Mamba layers before the attention "
                "layers)",
                [r"mamba", r"\bssm\b", r"state space"],
            ),
            (
                "why a Mamba layer's output carries it (a causal recurrence or convolution: "
                "each output depends on the tokens before it, in order)",
                [r"recurren", r"recursi", r"\bstate\b", r"conv", r"scan", r"sequential"],
            ),
        ],
    )

"""Causal attention through PyTorch's fused kernel (chapter 6).

The reference is the written-out softmax of :func:`jamba_min.attention.causal_attention`;
:func:`sdpa_attention` computes the same with ``F.scaled_dot_product_attention`` and never copies
a key-value head for the query heads that share it. :func:`visible_keys` is the mask both use
when a batch is left-padded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["sdpa_attention", "visible_keys"]


def visible_keys(
    L: int, T: int, key_mask: Tensor | None = None, device: torch.device | None = None
) -> Tensor:
    """Which keys each query may attend to: ``(L, T)`` bool, or ``(b, 1, L, T)`` with a mask.

    The L queries are the last L of the T positions, so query i sees keys 0 … T − L + i
    (causal). ``key_mask`` ``(b, T)``, True at real tokens, also hides the keys of the padding;
    a padding query still sees itself, so that its softmax row is not empty (which would give
    NaN). No real token ever reads a padding position's output.
    """
    causal = torch.ones(L, T, dtype=torch.bool, device=device).tril(T - L)
    if key_mask is None:
        return causal
    positions = torch.arange(T, device=device)
    itself = positions == positions[T - L :, None]  # (L, T): query i's own key
    return causal & (key_mask[:, None, None, :] | itself)  # (b, 1, L, T)


def sdpa_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    scale: float,
    dropout: float = 0.0,
    key_mask: Tensor | None = None,
) -> Tensor:
    """Causal grouped-query attention of the last L of T positions.

    q: ``(b, H, L, d_h)``; k, v: ``(b, G, T, d_h)`` with T ≥ L and G dividing H (each group of
    H / G query heads shares one key-value head). Query i attends to keys 0 … T − L + i, except
    padding keys when ``key_mask`` ``(b, T)`` (True at real tokens) is given; see
    :func:`visible_keys`. Returns ``(b, H, L, d_h)``.
    """
    b, H, L, d_h = q.shape
    G, T = k.shape[1], k.shape[2]
    gqa = H != G
    allowed = None if key_mask is None else visible_keys(L, T, key_mask, q.device)
    if L == 1:  # one new token, which sees every key: the H / G query heads that share a
        # key-value head become H / G rows of one query block, so each cached key is read once
        out = F.scaled_dot_product_attention(
            q.reshape(b, G, H // G, d_h), k, v, attn_mask=allowed, dropout_p=dropout, scale=scale
        )
        return out.reshape(b, H, 1, d_h)
    if allowed is None and T == L:  # square and causal; enable_gqa: the kernel shares each
        # key-value head
        return F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=dropout, scale=scale, enable_gqa=gqa
        )
    if allowed is None:
        allowed = visible_keys(L, T, device=q.device)  # the causal mask, offset
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=allowed, dropout_p=dropout, scale=scale, enable_gqa=gqa
    )

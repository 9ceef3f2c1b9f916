"""Causal attention through PyTorch's fused kernel (chapter 6).

The reference is the written-out softmax of :func:`jamba_min.attention.causal_attention`;
:func:`sdpa_attention` computes the same with ``F.scaled_dot_product_attention`` and never copies
a key-value head for the query heads that share it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["sdpa_attention"]


def sdpa_attention(q: Tensor, k: Tensor, v: Tensor, scale: float, dropout: float = 0.0) -> Tensor:
    """Causal grouped-query attention of the last L of T positions.

    q: ``(b, H, L, d_h)``; k, v: ``(b, G, T, d_h)`` with T ≥ L and G dividing H (each group of
    H / G query heads shares one key-value head). Query i attends to keys 0 … T − L + i.
    Returns ``(b, H, L, d_h)``.
    """
    b, H, L, d_h = q.shape
    G, T = k.shape[1], k.shape[2]
    gqa = H != G
    if L == 1:  # one new token, which sees every key: the H / G query heads that share a
        # key-value head become H / G rows of one query block, so each cached key is read once
        out = F.scaled_dot_product_attention(
            q.reshape(b, G, H // G, d_h), k, v, dropout_p=dropout, scale=scale
        )
        return out.reshape(b, H, 1, d_h)
    if T == L:  # square and causal; enable_gqa: the kernel shares each key-value head
        return F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=dropout, scale=scale, enable_gqa=gqa
        )
    allowed = torch.ones(L, T, dtype=torch.bool, device=q.device).tril(T - L)  # offset mask
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=allowed, dropout_p=dropout, scale=scale, enable_gqa=gqa
    )

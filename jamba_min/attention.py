"""Causal grouped-query attention without positional encoding, with a KV cache (chapter 6).

Shapes: ``b`` batch, ``L`` new tokens, ``T`` tokens in the cache, ``d`` = ``hidden_size``,
``H`` query heads, ``G`` key-value heads (``num_key_value_heads``), ``d_h`` = ``d / H``
(``head_dim``).

Jamba's attention layers add no positional information at all, neither absolute embeddings nor
RoPE: the Mamba layers before them already mix tokens in order, so the attention layers see
position-dependent inputs (the paper found RoPE changed little). Each group of ``H / G`` query
heads shares one key-value head, which divides the KV cache by ``H / G``.

A left-padded batch passes ``attention_mask`` ``(b, L)``, True at real tokens: no query attends
to a padding key, and a :class:`KVCache` remembers each row's padding so that decoding keeps
hiding those keys.

Module names and shapes are those of transformers' ``JambaAttention`` (``q_proj``, ``k_proj``,
``v_proj``, ``o_proj``, no biases, scaling ``d_h^-½``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .config import JambaConfig, check_hidden_states
from .ops.attention import sdpa_attention, visible_keys

__all__ = ["JambaAttention", "KVCache", "causal_attention"]


class KVCache:
    """Keys and values of the tokens seen so far, ``(b, G, T, d_h)`` each.

    Storage grows by doubling, so appending a token costs O(1) amortised, not a copy of the
    whole cache; :meth:`reserve` sets room for a known number of tokens up front (generation
    knows it), so that no copy happens at all. ``keys`` and ``values`` are views of the filled
    part. ``pad`` ``(b,)``: how many padding positions each row begins with (left padding), or
    None without padding; every token appended later is real.
    """

    def __init__(self, k: Tensor, v: Tensor, pad: Tensor | None = None):
        self._k, self._v, self.length, self.pad = k, v, k.shape[2], pad

    @property
    def capacity(self) -> int:
        """Tokens the storage has room for (≥ ``length``)."""
        return self._k.shape[2]

    def reserve(self, tokens: int) -> None:
        """Make room for ``tokens`` tokens in all, copying the filled part once if needed."""
        if tokens > self.capacity:
            grow = (0, 0, 0, tokens - self.capacity)
            self._k, self._v = F.pad(self._k, grow), F.pad(self._v, grow)

    @property
    def keys(self) -> Tensor:
        return self._k[:, :, : self.length]

    @property
    def values(self) -> Tensor:
        return self._v[:, :, : self.length]

    def append(self, k: Tensor, v: Tensor) -> None:
        """Add the keys and values of new tokens, ``(b, G, L, d_h)`` each, in place."""
        if k.shape[:2] != self._k.shape[:2] or k.shape[3] != self._k.shape[3]:
            raise ValueError(
                f"KVCache.append: new keys must have shape (batch, heads, L, head_dim) = "
                f"{(*self._k.shape[:2], 'L', self._k.shape[3])}, got {tuple(k.shape)}"
            )
        need = self.length + k.shape[2]
        if need > self.capacity:
            self.reserve(max(need, 2 * self.capacity))
        self._k[:, :, self.length : need] = k
        self._v[:, :, self.length : need] = v
        self.length = need

    def key_mask(self) -> Tensor | None:
        """``(b, T)``: True at the keys of real tokens; None without padding."""
        if self.pad is None:
            return None
        return torch.arange(self.length, device=self.pad.device) >= self.pad[:, None]

    def nbytes(self) -> int:
        """Bytes of the keys and values held (the filled part)."""
        return self.keys.nbytes + self.values.nbytes

    def allocated_nbytes(self) -> int:
        """Bytes of the storage allocated for keys and values (``capacity`` tokens, ≥ the
        filled part that :meth:`nbytes` counts)."""
        return self._k.nbytes + self._v.nbytes


def causal_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    scale: float,
    dropout: float = 0.0,
    key_mask: Tensor | None = None,
) -> Tensor:
    """The reference: softmax(q kᵀ · scale + causal mask) v, written out.

    q: ``(b, H, L, d_h)``; k, v: ``(b, H, T, d_h)`` with T ≥ L; the L queries are the last L of
    the T positions, so query i may attend to keys 0 … T − L + i; with ``key_mask`` ``(b, T)``
    (True at real tokens) never to a padding key (see :func:`visible_keys`). The softmax runs
    in float32 at least (float64 stays float64). Returns ``(b, H, L, d_h)``.
    """
    L, T = q.shape[2], k.shape[2]
    scores = (q @ k.transpose(2, 3)) * scale  # (b, H, L, T)
    hidden = ~visible_keys(L, T, key_mask, q.device)  # the future, and padding keys
    scores = scores.masked_fill(hidden, float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.promote_types(q.dtype, torch.float32))
    return F.dropout(weights.to(q.dtype), p=dropout) @ v


class JambaAttention(nn.Module):
    """Jamba's attention layer; mirrors transformers' ``JambaAttention`` (eager and sdpa paths).

    ``impl="sdpa"`` uses ``F.scaled_dot_product_attention``; ``impl="eager"`` the written-out
    :func:`causal_attention`.
    """

    def __init__(self, config: JambaConfig, layer_idx: int | None = None, impl: str = "sdpa"):
        super().__init__()
        if impl not in ("sdpa", "eager"):
            raise ValueError(f"impl must be 'sdpa' or 'eager', got {impl!r}")
        self.config, self.layer_idx, self.impl = config, layer_idx, impl
        d, H, G = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
        self.num_heads, self.num_kv_heads, self.head_dim = H, G, config.head_dim
        self.scale = self.head_dim**-0.5
        self.q_proj = nn.Linear(d, H * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, G * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, G * self.head_dim, bias=False)
        self.o_proj = nn.Linear(H * self.head_dim, d, bias=False)
        for linear in (self.q_proj, self.k_proj, self.v_proj, self.o_proj):
            nn.init.normal_(linear.weight, std=config.initializer_range)

    def forward(
        self,
        hidden_states: Tensor,
        cache: KVCache | None = None,
        return_cache: bool = False,
        attention_mask: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, KVCache]:
        """Attend ``(b, L, d)`` → ``(b, L, d)``, causally.

        Without ``cache`` the L tokens attend among themselves; ``return_cache=True`` also
        returns a :class:`KVCache` of them (a prefill). With ``cache`` the new tokens attend to
        the cached ones and to each other, and are appended to it in place (decoding).

        ``attention_mask`` ``(b, L)`` bool, True at real tokens, left padding only (the model
        checks it), without a cache: padding keys are hidden, and a returned cache remembers
        each row's padding. With a cache the padding is the cache's own.
        """
        x = hidden_states
        check_hidden_states(x, self.config.hidden_size, "JambaAttention")
        key_mask = None
        if attention_mask is not None:
            if cache is not None:
                raise ValueError(
                    "JambaAttention: attention_mask is given at the prefill only; with a cache "
                    "the padding is the one the cache remembers"
                )
            if attention_mask.dtype != torch.bool or attention_mask.shape != x.shape[:2]:
                got = f"{tuple(attention_mask.shape)} {attention_mask.dtype}"
                raise ValueError(
                    f"JambaAttention: attention_mask must be a bool tensor of shape (batch, L) = "
                    f"{tuple(x.shape[:2])}, got {got}"
                )
            key_mask = attention_mask
        q = rearrange(self.q_proj(x), "b L (H d_h) -> b H L d_h", H=self.num_heads)
        k = rearrange(self.k_proj(x), "b L (G d_h) -> b G L d_h", G=self.num_kv_heads)
        v = rearrange(self.v_proj(x), "b L (G d_h) -> b G L d_h", G=self.num_kv_heads)
        if cache is not None:
            cache.append(k, v)
            k, v, key_mask = cache.keys, cache.values, cache.key_mask()
        elif return_cache:
            pad = None if key_mask is None else (~key_mask).sum(1)  # (b,) positions of padding
            cache = KVCache(k.contiguous(), v.contiguous(), pad)
        p = self.config.attention_dropout if self.training else 0.0  # on the attention weights
        if self.impl == "eager":  # each key-value head serves H / G query heads: copy it
            groups = self.num_heads // self.num_kv_heads
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            out = causal_attention(q, k, v, self.scale, dropout=p, key_mask=key_mask)
        else:  # the same in PyTorch's fused kernel, without copying key-value heads
            out = sdpa_attention(q, k, v, self.scale, dropout=p, key_mask=key_mask)
        out = self.o_proj(rearrange(out, "b H L d_h -> b L (H d_h)"))
        return (out, cache) if return_cache else out

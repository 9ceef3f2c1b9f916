"""Hybrid against pure (chapter 10): models of equal size, and what to measure inside them.

The paper's ablations (its section 6) compare attention-only, Mamba-only and hybrid models of
about the same size trained the same way. :func:`ablation_config` builds such a family at toy
scale with dense MLPs (the MoE is a separate question), :func:`add_learned_positions` gives the
attention-only model the positional encoding it needs (Jamba's hybrids have none), and two
probes measure what the paper shows: :func:`induction_mass` (its Figure 8: attention heads that
look at the token after the previous occurrence of the current one; :func:`induction_score` is
the same measure on :func:`repeated_sequences`) and
:func:`mamba_activations` (its Figure 9: how large activations inside the Mamba layers grow,
with and without the RMSNorms on Δ, B and C, which :func:`drop_inner_norms` removes).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from .config import JambaConfig, is_int
from .mamba import JambaMambaMixer
from .model import JambaForCausalLM

#: attention layer period and offset of each architecture (Mamba-only: a period longer than the
#: model, so that no layer attends)
SCHEDULES = {"attention": (1, 0), "hybrid 1:3": (4, 2), "hybrid 1:7": (8, 4), "mamba": (None, 0)}


def ablation_config(
    architecture: str, *, hidden_size: int = 64, num_hidden_layers: int = 8, **overrides
) -> JambaConfig:
    """A toy config of one of :data:`SCHEDULES`, all of about the same parameter count.

    Dense SwiGLU MLPs everywhere (``num_experts=1``). An attention mixer holds fewer weights than
    a Mamba mixer of the same width, so a model with attention layers gets wider MLPs, chosen so
    that its total parameter count comes closest to the Mamba-only model's.
    """
    if architecture not in SCHEDULES:
        raise ValueError(f"architecture must be one of {list(SCHEDULES)}, got {architecture!r}")
    period, offset = SCHEDULES[architecture]
    fields = dict(
        vocab_size=256, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_hidden_layers, num_attention_heads=4, num_key_value_heads=2,
        attn_layer_period=period or num_hidden_layers + 1,
        attn_layer_offset=num_hidden_layers if period is None else offset,
        num_experts=1, num_experts_per_tok=1, expert_layer_period=1, expert_layer_offset=0,
        mamba_d_state=16, mamba_expand=2, mamba_dt_rank=max(1, -(-hidden_size // 16)),
    )  # fmt: skip
    fields.update(overrides)
    config = JambaConfig(**fields)
    if architecture != "mamba" and "intermediate_size" not in overrides:
        from .accounting import count_params

        mamba = ablation_config(
            "mamba", hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, **overrides
        )
        target = count_params(mamba)["total"]
        best = min(
            range(fields["intermediate_size"], 16 * hidden_size + 1),
            key=lambda w: abs(count_params(config.replace(intermediate_size=w))["total"] - target),
        )
        config = config.replace(intermediate_size=best)
    return config


class PositionalEmbedding(nn.Embedding):
    """Token embeddings plus learned absolute positions: ``(b, L)`` ids → ``(b, L, d)``.

    The attention-only baseline's positional encoding, since without one attention sees its
    inputs as a set (chapter 6). Only for whole sequences, as in training and evaluation: a
    decoding step of one token would not know its position.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_len: int, std: float):
        super().__init__(num_embeddings, embedding_dim)
        self.positions = nn.Parameter(torch.randn(max_len, embedding_dim) * std)

    def forward(self, input_ids: Tensor) -> Tensor:
        L = input_ids.shape[1]
        if len(self.positions) < L:
            raise ValueError(f"input_ids: {L} tokens, but positions were learned for at most "
                             f"{len(self.positions)}")  # fmt: skip
        return super().forward(input_ids) + self.positions[:L]


def add_learned_positions(model: JambaForCausalLM, max_len: int) -> JambaForCausalLM:
    """Give ``model`` learned absolute positions for sequences of up to ``max_len`` tokens, in
    place; its token embeddings stay the same tensor (a tied head stays tied)."""
    if not is_int(max_len) or max_len < 1:
        raise ValueError(f"max_len must be an int >= 1, got {max_len!r}")
    old = model.model.embed_tokens
    new = PositionalEmbedding(
        old.num_embeddings, old.embedding_dim, max_len, model.config.initializer_range
    ).to(old.weight.device, old.weight.dtype)
    new.weight = old.weight
    model.model.embed_tokens = new
    return model


def drop_inner_norms(model: JambaForCausalLM) -> JambaForCausalLM:
    """Remove the RMSNorms on Δ, B and C from every Mamba mixer, in place (the original Mamba
    has none; Jamba added them because activations grew without them)."""
    for module in model.modules():
        if isinstance(module, JambaMambaMixer):
            module.dt_layernorm = module.b_layernorm = module.c_layernorm = nn.Identity()
    return model


@torch.no_grad()
def attention_maps(model: JambaForCausalLM, input_ids: Tensor) -> dict[int, Tensor]:
    """The causal attention weights of every attention layer on ``input_ids`` ``(b, L)``:
    ``{layer index: (b, H, L, L)}``, recomputed from each layer's input and its q and k
    projections (no positional term: Jamba's attention has none)."""
    inputs: dict[int, Tensor] = {}
    hooks = [
        layer.self_attn.register_forward_pre_hook(
            lambda m, args, i=i: inputs.__setitem__(i, args[0])
        )
        for i, layer in enumerate(model.model.layers)
        if layer.is_attention
    ]
    try:
        model(input_ids)
    finally:
        for h in hooks:
            h.remove()
    maps = {}
    for i, x in inputs.items():
        attn = model.model.layers[i].self_attn
        q = rearrange(attn.q_proj(x), "b L (H d_h) -> b H L d_h", H=attn.num_heads)
        k = rearrange(attn.k_proj(x), "b L (G d_h) -> b G L d_h", G=attn.num_kv_heads)
        k = k.repeat_interleave(attn.num_heads // attn.num_kv_heads, dim=1)
        scores = q @ k.transpose(-1, -2) * attn.scale
        L = scores.shape[-1]
        future = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
        maps[i] = scores.masked_fill(future, float("-inf")).softmax(-1)
    return maps


def repeated_sequences(num: int, half: int, vocab_size: int, seed: int = 0) -> Tensor:
    """``(num, 2·half)`` ids: ``half`` random tokens, then the same tokens again."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(0, vocab_size, (num, half), generator=g)
    return torch.cat([first, first], dim=1)


def induction_score(maps: dict[int, Tensor], half: int) -> dict[int, Tensor]:
    """Per attention layer and head, the mean attention weight that a token of the repeat puts on
    the token that followed its earlier occurrence: ``{layer: (H,)}``.

    On :func:`repeated_sequences`, the token at position t ≥ half occurred before at t − half, and
    an induction head attends to t − half + 1, which is what comes next. A head that spread its
    weight evenly over the past would score about 1 / t.
    """
    scores = {}
    for i, p in maps.items():
        t = torch.arange(half, p.shape[-1], device=p.device)
        scores[i] = p[:, :, t, t - half + 1].mean(dim=(0, 2))
    return scores


def induction_mass(
    maps: dict[int, Tensor], input_ids: Tensor, queries: Tensor
) -> dict[int, Tensor]:
    """Per attention layer and head, the mean attention weight that a query position puts on the
    token after the previous occurrence of its own token: ``{layer: (H,)}``.

    ``input_ids`` is ``(b, L)`` and ``queries`` a boolean ``(b, L)`` that marks the positions
    t to measure (in MQAR, the queried keys: their label is -100 nowhere else). For each, s is
    the latest position before t that holds the same token, and the weight read is ω_{t, s+1}:
    where an induction head looks, since what followed the token last time is the best guess
    for what follows it now. Every marked position needs an earlier occurrence of its token.
    """
    if queries.shape != input_ids.shape or queries.dtype != torch.bool:
        raise ValueError(
            f"queries must be a bool tensor of input_ids' shape {tuple(input_ids.shape)}, "
            f"got {queries.dtype} {tuple(queries.shape)}"
        )
    b, t = queries.nonzero(as_tuple=True)
    L = input_ids.shape[1]
    steps = torch.arange(L, device=input_ids.device)
    same = (input_ids[b] == input_ids[b, t][:, None]) & (steps < t[:, None])  # (queries, L)
    s = torch.where(same, steps, -1).amax(dim=1)
    if (s < 0).any():
        i = int((s < 0).nonzero()[0])
        raise ValueError(f"queries: the token at row {int(b[i])}, position {int(t[i])} has no "
                         "earlier occurrence")  # fmt: skip
    return {i: p[b, :, t, s + 1].mean(dim=0) for i, p in maps.items()}


@torch.no_grad()
def mamba_activations(model: JambaForCausalLM, input_ids: Tensor) -> dict[int, float]:
    """Largest absolute value that each Mamba mixer's output reaches on ``input_ids``:
    ``{layer index: max |out|}``; what the paper's Figure 9 tracks, at toy scale."""
    found: dict[int, float] = {}
    hooks = [
        layer.mamba.register_forward_hook(
            lambda m, args, out, i=i: found.__setitem__(i, out.abs().max().item())
        )
        for i, layer in enumerate(model.model.layers)
        if not layer.is_attention
    ]
    try:
        model(input_ids)
    finally:
        for h in hooks:
            h.remove()
    return found


__all__ = [
    "SCHEDULES", "PositionalEmbedding", "ablation_config", "add_learned_positions",
    "attention_maps", "drop_inner_norms", "induction_mass", "induction_score", "mamba_activations",
    "repeated_sequences",
]  # fmt: skip

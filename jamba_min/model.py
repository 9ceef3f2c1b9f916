"""The Jamba model: the hybrid stack of Mamba and attention layers with MLP and MoE (chapter 8).

Reading order: a decoder layer (pre-norm residual mixer, then pre-norm residual feed-forward),
the model (embedding → layers by the schedule → final RMSNorm), the causal LM head.

State-dict keys are transformers' (``model.embed_tokens``, ``model.layers.{i}.mamba.*`` or
``.self_attn.*``, ``.feed_forward.*``, ``.input_layernorm``, ``.pre_ff_layernorm``,
``model.final_layernorm``, ``lm_head``), so ``load_state_dict`` takes a transformers ≥ 5 state
dict as it is. No positional encoding anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .attention import JambaAttention
from .config import JambaConfig
from .mamba import JambaMambaMixer
from .moe import JambaMLP, JambaSparseMoeBlock, load_balancing_loss
from .norm import RMSNorm

__all__ = ["CausalLMOutput", "JambaDecoderLayer", "JambaForCausalLM", "JambaModel"]


@dataclass
class CausalLMOutput:
    """logits ``(b, L, vocab)``; aux_loss: the routers' load-balancing loss times
    ``router_aux_loss_coef`` (None without MoE layers); router_logits: one ``(b·L, n)`` per MoE
    layer."""

    logits: Tensor
    aux_loss: Tensor | None
    router_logits: list[Tensor]


class JambaDecoderLayer(nn.Module):
    """x ← x + mixer(norm(x)); x ← x + feed_forward(norm(x)). ``(b, L, d)`` → ``(b, L, d)``.

    The mixer is attention or Mamba and the feed-forward an MLP or a MoE, by the schedule.
    """

    def __init__(self, config: JambaConfig, layer_idx: int):
        super().__init__()
        self.is_attention = config.is_attention_layer(layer_idx)
        self.is_moe = config.is_moe_layer(layer_idx)
        if self.is_attention:
            self.self_attn = JambaAttention(config, layer_idx)
        else:
            self.mamba = JambaMambaMixer(config, layer_idx)
        self.feed_forward = JambaSparseMoeBlock(config) if self.is_moe else JambaMLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.pre_ff_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Returns the new hidden states and, for a MoE layer, its router logits."""
        mixer = self.self_attn if self.is_attention else self.mamba
        x = x + mixer(self.input_layernorm(x))
        h = self.pre_ff_layernorm(x)
        router_logits = None
        if self.is_moe:
            h, router_logits = self.feed_forward(h)
        else:
            h = self.feed_forward(h)
        return x + h, router_logits


class JambaModel(nn.Module):
    """Token ids ``(b, L)`` → final hidden states ``(b, L, d)`` and the MoE router logits."""

    def __init__(self, config: JambaConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        nn.init.normal_(self.embed_tokens.weight, std=config.initializer_range)
        self.layers = nn.ModuleList(
            JambaDecoderLayer(config, i) for i in range(config.num_hidden_layers)
        )
        self.final_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, input_ids: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.embed_tokens(input_ids)
        router_logits = []
        for layer in self.layers:
            x, logits = layer(x)
            if logits is not None:
                router_logits.append(logits)
        return self.final_layernorm(x), router_logits


class JambaForCausalLM(nn.Module):
    """Jamba with its language-model head; ``model(input_ids)`` → :class:`CausalLMOutput`."""

    def __init__(self, config: JambaConfig):
        super().__init__()
        if not isinstance(config, JambaConfig):
            raise ValueError(f"config must be a jamba_min.JambaConfig, got {type(config).__name__}")
        self.config = config
        self.model = JambaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        else:
            nn.init.normal_(self.lm_head.weight, std=config.initializer_range)

    def forward(self, input_ids: Tensor) -> CausalLMOutput:
        """``input_ids`` ``(b, L)`` of token ids in ``[0, vocab_size)``."""
        if (
            not isinstance(input_ids, Tensor)
            or input_ids.dim() != 2
            or input_ids.is_floating_point()
        ):
            got = (
                f"{tuple(input_ids.shape)} {input_ids.dtype}"
                if isinstance(input_ids, Tensor)
                else type(input_ids).__name__
            )
            raise ValueError(f"input_ids must be an integer tensor of shape (batch, L), got {got}")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size):
            raise ValueError(
                f"input_ids must lie in [0, vocab_size = {self.config.vocab_size}), got values in "
                f"[{input_ids.min().item()}, {input_ids.max().item()}]"
            )
        hidden, router_logits = self.model(input_ids)
        aux_loss = None
        if router_logits:
            aux_loss = self.config.router_aux_loss_coef * load_balancing_loss(
                router_logits, self.config.num_experts, self.config.num_experts_per_tok
            )
        return CausalLMOutput(self.lm_head(hidden), aux_loss, router_logits)

    @torch.no_grad()
    def num_parameters(self) -> int:
        """Distinct parameters (a tied lm_head counts once), to compare with ``count_params``."""
        return sum(p.numel() for p in self.parameters())

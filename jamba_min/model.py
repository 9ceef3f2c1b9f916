"""The Jamba model: the hybrid stack of Mamba and attention layers with MLP and MoE (chapter 8).

Reading order: a decoder layer (pre-norm residual mixer, then pre-norm residual feed-forward),
the model (embedding → layers by the schedule → final RMSNorm), the causal LM head.

State-dict keys are transformers' (``model.embed_tokens``, ``model.layers.{i}.mamba.*`` or
``.self_attn.*``, ``.feed_forward.*``, ``.input_layernorm``, ``.pre_ff_layernorm``,
``model.final_layernorm``, ``lm_head``), so ``load_state_dict`` takes a transformers ≥ 5 state
dict as it is. No positional encoding anywhere.

Padding: a batch of prompts of different lengths is padded on the left, and ``attention_mask``
``(b, L)`` (1 at real tokens, 0 at padding) keeps the padding out of every layer: attention
never attends to it, and Mamba layers reach each row's first real token with the state a
sequence starts with. Each row's real tokens then give the logits they give alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from torch import Tensor, nn

from . import checkpoint
from .attention import JambaAttention, KVCache
from .config import JambaConfig
from .generation import check_attention_mask, generate
from .mamba import JambaMambaMixer, MambaState
from .moe import JambaMLP, JambaSparseMoeBlock, load_balancing_loss
from .norm import RMSNorm

__all__ = ["CausalLMOutput", "HybridCache", "JambaDecoderLayer", "JambaForCausalLM", "JambaModel"]

#: What one layer remembers between tokens: keys and values, or the Mamba state.
LayerState = KVCache | MambaState


@dataclass
class HybridCache:
    """The decoding state of every layer: a :class:`KVCache` for attention layers (grows with the
    context) and a :class:`MambaState` for Mamba layers (fixed size)."""

    layers: list[LayerState]

    @contextlib.contextmanager
    def atomic(self) -> Iterator[HybridCache]:
        """Undo everything the block did to the cache if it raises.

        A decoding step changes the cache layer by layer (attention layers append to their
        :class:`KVCache` in place, Mamba layers replace their state); a step that fails part-way
        must not leave some layers a token ahead of the others.
        """
        layers = list(self.layers)
        lengths = [s.length if isinstance(s, KVCache) else None for s in layers]
        try:
            yield self
        except BaseException:
            self.layers = layers
            for state, length in zip(layers, lengths, strict=True):
                if length is not None:
                    state.length = length  # what was appended beyond it is no longer seen
            raise

    def nbytes(self) -> dict[str, int]:
        """Bytes held by attention caches and by Mamba states."""
        kv = sum(s.nbytes() for s in self.layers if isinstance(s, KVCache))
        ssm = sum(s.conv.nbytes + s.ssm.nbytes for s in self.layers if isinstance(s, MambaState))
        return {"kv": kv, "mamba": ssm}


@dataclass
class CausalLMOutput:
    """logits ``(b, L, vocab)``; router_logits: one ``(b·L, n)`` per MoE layer; cache: the
    decoding state, when asked for; aux_loss: the routers' load-balancing loss times
    ``router_aux_loss_coef`` (None without MoE layers), computed when first read, so that
    decoding, which never reads it, does not pay for it. With padding, the loss counts the real
    tokens only, as transformers does."""

    logits: Tensor
    router_logits: list[Tensor]
    cache: HybridCache | None = None
    config: JambaConfig | None = field(default=None, repr=False)
    attention_mask: Tensor | None = field(default=None, repr=False)  # bool (b, L), or None

    @cached_property
    def aux_loss(self) -> Tensor | None:
        if not self.router_logits:
            return None
        cfg, router_logits = self.config, self.router_logits
        if self.attention_mask is not None:  # the rows (b·L) of real tokens
            router_logits = [r[self.attention_mask.reshape(-1)] for r in router_logits]
        loss = load_balancing_loss(router_logits, cfg.num_experts, cfg.num_experts_per_tok)
        return cfg.router_aux_loss_coef * loss


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

    def forward(
        self,
        x: Tensor,
        state: LayerState | None = None,
        return_state: bool = False,
        attention_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, LayerState | None]:
        """Returns the new hidden states, the router logits of a MoE layer, and the layer's state.

        Without ``state``: the whole sequence (a prefill when ``return_state``), with its
        padding mask, bool ``(b, L)`` or None. With ``state``: one token ``(b, 1, d)`` (Mamba
        layers step in O(1); attention appends to its cache, which remembers the padding).
        """
        h = self.input_layernorm(x)
        if self.is_attention:
            if state is not None:
                h = self.self_attn(h, cache=state)
            else:
                h = self.self_attn(h, return_cache=return_state, attention_mask=attention_mask)
                h, state = h if return_state else (h, None)
        elif state is not None:
            h, state = self.mamba.step(h[:, 0], state)
            h = h[:, None]
        else:
            h = self.mamba(h, return_state=return_state, attention_mask=attention_mask)
            h, state = h if return_state else (h, None)
        x = x + h
        h = self.pre_ff_layernorm(x)
        router_logits = None
        if self.is_moe:
            h, router_logits = self.feed_forward(h)
        else:
            h = self.feed_forward(h)
        return x + h, router_logits, state


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

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        cache: HybridCache | None = None,
        return_cache: bool = False,
    ) -> tuple[Tensor, list[Tensor], HybridCache | None]:
        """Hidden states ``(b, L, d)``, router logits, and the cache (given one, or a new one).

        ``attention_mask``: bool ``(b, L)``, True at real tokens, left padding, as
        :func:`check_attention_mask` returns it; None without padding.
        """
        x = self.embed_tokens(input_ids)
        router_logits, states = [], []
        for i, layer in enumerate(self.layers):
            state = cache.layers[i] if cache is not None else None
            x, logits, state = layer(x, state, return_cache, attention_mask)
            states.append(state)
            if logits is not None:
                router_logits.append(logits)
        if cache is not None:
            cache.layers = states
        elif return_cache:
            cache = HybridCache(states)
        return self.final_layernorm(x), router_logits, cache


class JambaForCausalLM(nn.Module):
    """Jamba with its language-model head; ``model(input_ids)`` → :class:`CausalLMOutput`."""

    def __init__(self, config: JambaConfig):
        super().__init__()
        if not isinstance(config, JambaConfig):
            raise ValueError(f"config must be a jamba_min.JambaConfig, got {type(config).__name__}")
        self.config = config
        self._architecture = config.architecture()  # to notice edits after this point
        self.model = JambaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.tie_weights()
        else:
            nn.init.normal_(self.lm_head.weight, std=config.initializer_range)

    def tie_weights(self) -> None:
        """With ``tie_word_embeddings``, make the head use the embedding matrix itself."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        cache: HybridCache | None = None,
        return_cache: bool = False,
    ) -> CausalLMOutput:
        """``input_ids`` ``(b, L)`` of token ids in ``[0, vocab_size)``, any integer dtype, with
        ``b ≥ 1`` and ``L ≥ 1``.

        ``attention_mask`` ``(b, L)``: 1 at real tokens, 0 at padding, on the left only (bool,
        integer or floating dtype holding 0 and 1; see :func:`check_attention_mask`). Each
        row's real tokens get the logits they would get alone; the padding's logits are
        meaningless. None, or all ones: no padding, the same computation as without.

        ``return_cache=True`` returns the :class:`HybridCache` after the sequence (a prefill) in
        ``out.cache``, which remembers the padding; passing ``cache`` advances it by one token
        (``L`` must be 1, and ``attention_mask`` None: the new token is real, and the padding
        is the prefill's). A step that raises leaves the cache as it was.
        """
        input_ids = self._check_inputs(input_ids, cache)
        if attention_mask is not None and cache is not None:
            raise ValueError(
                "attention_mask is given with the prompt only (the prefill, return_cache=True); "
                "with a cache leave it out: the cache remembers the prompt's padding and every "
                "new token is real"
            )
        attention_mask = check_attention_mask(attention_mask, input_ids)
        return self._forward(input_ids, cache, return_cache, attention_mask=attention_mask)

    def _check_inputs(self, input_ids: Tensor, cache: HybridCache | None) -> Tensor:
        """The ids as int64 after checking them (integers of shape (batch, L) in
        [0, vocab_size); one token when given a cache that fits this model) and the config."""
        self._check_config()
        ok_dtype = isinstance(input_ids, Tensor) and not (
            input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool
        )
        if not ok_dtype or input_ids.dim() != 2:
            got = (
                f"{tuple(input_ids.shape)} {input_ids.dtype}"
                if isinstance(input_ids, Tensor)
                else type(input_ids).__name__
            )
            raise ValueError(f"input_ids must be an integer tensor of shape (batch, L), got {got}")
        if not input_ids.numel():
            raise ValueError(
                f"input_ids must hold at least one token in at least one row, "
                f"got shape {tuple(input_ids.shape)}"
            )
        input_ids = input_ids.long()  # uint8, int16, int32 …: the embedding wants int64
        low, high = torch.aminmax(input_ids)
        low, high = low.item(), high.item()
        if low < 0 or high >= self.config.vocab_size:
            raise ValueError(
                f"input_ids must lie in [0, vocab_size = {self.config.vocab_size}), got "
                f"values in [{low}, {high}]"
            )
        if cache is not None:
            kinds = [KVCache if layer.is_attention else MambaState for layer in self.model.layers]
            if not isinstance(cache, HybridCache) or [type(s) for s in cache.layers] != kinds:
                raise ValueError(
                    "cache must be the HybridCache this model returned (return_cache=True): one "
                    "KVCache per attention layer and one MambaState per Mamba layer"
                )
            if input_ids.shape[1] != 1:
                raise ValueError(
                    "with a cache, input_ids must hold one token, shape (batch, 1), "
                    f"got {tuple(input_ids.shape)}"
                )
        return input_ids

    def _check_config(self) -> None:
        """The config still describes the modules built from it (its runtime fields may change)."""
        if not isinstance(self.config, JambaConfig):
            raise ValueError(f"model.config must be a JambaConfig, got {type(self.config)}")
        now = self.config.architecture()
        if now != self._architecture:
            changed = ", ".join(
                f"{k} {self._architecture[k]!r} → {now[k]!r}"
                for k in now
                if now[k] != self._architecture[k]
            )
            raise ValueError(
                f"model.config was edited after the model was built ({changed}); these fields "
                "fix the model's modules: build a new model, JambaForCausalLM(config)"
            )
        self.config.validate()

    def _forward(
        self,
        input_ids: Tensor,
        cache: HybridCache | None,
        return_cache: bool,
        last_only: bool = False,
        attention_mask: Tensor | None = None,
    ) -> CausalLMOutput:
        """:meth:`forward` without the checks (``generate`` feeds it tokens it made itself);
        ``last_only``: logits of the last position only (all that a prefill needs);
        ``attention_mask`` as :func:`check_attention_mask` returns it."""
        with cache.atomic() if cache is not None else contextlib.nullcontext():
            hidden, router_logits, cache = self.model(
                input_ids, attention_mask, cache, return_cache
            )
            if last_only:
                hidden = hidden[:, -1:]
            logits = self.lm_head(hidden)
        return CausalLMOutput(logits, router_logits, cache, self.config, attention_mask)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, dtype: torch.dtype | str | None = None
    ) -> JambaForCausalLM:
        """A model from a local folder: ``config.json`` plus ``model.safetensors`` or a sharded
        index, either expert layout; see :func:`jamba_min.checkpoint.load_pretrained`."""
        return checkpoint.load_pretrained(cls, path, dtype)

    def load_hf_state_dict(self, sd: Mapping[str, Tensor]) -> None:
        """Load a transformers-style state dict, either expert layout (see ``checkpoint``)."""
        checkpoint.load_hf_state_dict(self, sd)

    def save_pretrained(self, path: str | Path) -> None:
        """Write ``config.json`` + ``model.safetensors`` in the published layout."""
        checkpoint.save_pretrained(self, path)

    @torch.no_grad()
    def num_parameters(self) -> int:
        """Distinct parameters (a tied lm_head counts once), to compare with ``count_params``."""
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | list[int] | None = None,
        generator: torch.Generator | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Prefill the prompt ``(b, L)``, then one token per step from the hybrid cache; returns
        ``(b, L + steps)``, steps ≤ ``max_new_tokens``. ``attention_mask`` ``(b, L)``: 1 at real
        tokens, 0 at left padding, as in :meth:`forward`. See
        :func:`jamba_min.generation.generate`.
        """
        return generate(
            self, input_ids, max_new_tokens, temperature, top_k, top_p, eos_token_id, generator,
            attention_mask,
        )  # fmt: skip

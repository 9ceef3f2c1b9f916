"""The Jamba configuration and its layer schedule (chapter 0).

`JambaConfig` keeps the field names and defaults of transformers' ``JambaConfig``, so a
checkpoint's ``config.json`` reads straight into it. The defaults are Jamba v0.1
(Lieber et al. 2024, §2-3): 32 layers in 4 Jamba blocks of l = 8 layers, one attention layer
per block (a:m = 1:7), a mixture-of-experts MLP every e = 2 layers with n = 16 experts of which
K = 2 are active per token.

The schedule is a rule over the layer index ``i``, exactly as in transformers:

* layer ``i`` is an attention layer when ``i % attn_layer_period == attn_layer_offset``,
  otherwise a Mamba layer;
* layer ``i`` carries a MoE MLP when ``i % expert_layer_period == expert_layer_offset``,
  otherwise a dense MLP.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ACTIVATIONS", "HIDDEN_ACTIVATIONS", "IGNORED_FIELDS", "RUNTIME_FIELDS", "JambaConfig",
    "check_hidden_states", "is_int", "is_real",
]  # fmt: skip

#: The activations ``hidden_act`` can name (transformers' ACT2FN entries that Jamba uses).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}
#: Their names, the values ``hidden_act`` accepts.
HIDDEN_ACTIVATIONS = tuple(ACTIVATIONS)

#: Fields kept so that a transformers ``config.json`` reads in and writes back unchanged, which
#: jamba_min never reads: no code checks them, and they change nothing. (``use_cache`` and
#: ``output_router_logits``: the caller asks for a cache or reads the router logits; the token
#: ids: ``generate`` takes ``eos_token_id`` as an argument; no position embeddings exist; the
#: kernels are chosen per op, ``jamba_min.ops``.)
IGNORED_FIELDS = frozenset({
    "use_cache", "output_router_logits", "pad_token_id", "bos_token_id", "eos_token_id",
    "max_position_embeddings", "use_mamba_kernels",
})  # fmt: skip
#: Fields that a built model reads while it runs (or never): they may change after it is built.
#: Every other field fixes the modules' shapes or constants when the model is built.
RUNTIME_FIELDS = IGNORED_FIELDS | {"router_aux_loss_coef", "attention_dropout", "initializer_range"}

# transformers maps this legacy name onto ``num_experts`` (its ``attribute_map``).
_ALIASES = {"num_local_experts": "num_experts"}


@dataclasses.dataclass
class JambaConfig:
    """Hyper-parameters of a Jamba model; names and defaults as transformers' ``JambaConfig``.

    Every field that jamba_min reads is checked when the config is made (and when :meth:`validate`
    is called after editing it); a bad value raises ``ValueError`` naming the field, the value and
    what was expected. The fields in :data:`IGNORED_FIELDS` are kept as given and never read.
    ``mamba_dt_rank="auto"`` resolves to ``ceil(hidden_size / 16)``.

    Example:
        >>> cfg = JambaConfig()
        >>> cfg.attention_layers()
        [4, 12, 20, 28]
        >>> cfg.mamba_dt_rank, cfg.mamba_d_inner, cfg.head_dim
        (256, 8192, 128)
    """

    vocab_size: int = 65536
    tie_word_embeddings: bool = False
    hidden_size: int = 4096
    intermediate_size: int = 14336
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = 8
    hidden_act: str = "silu"
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = True
    output_router_logits: bool = False
    router_aux_loss_coef: float = 0.001
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    max_position_embeddings: int = 262144
    attention_dropout: float = 0.0
    num_experts_per_tok: int = 2
    num_experts: int = 16
    expert_layer_period: int = 2
    expert_layer_offset: int = 1
    attn_layer_period: int = 8
    attn_layer_offset: int = 4
    use_mamba_kernels: bool = True
    mamba_d_state: int = 16
    mamba_d_conv: int = 4
    mamba_expand: int = 2
    mamba_dt_rank: int | str = "auto"
    mamba_conv_bias: bool = True
    mamba_proj_bias: bool = False

    def __post_init__(self) -> None:
        if self.num_key_value_heads is None:  # transformers: None means plain multi-head
            self.num_key_value_heads = self.num_attention_heads
        if self.mamba_dt_rank == "auto":
            _check_positive_int("hidden_size", self.hidden_size)
            self.mamba_dt_rank = math.ceil(self.hidden_size / 16)
        self.validate()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JambaConfig:
        """Build a config from a checkpoint's ``config.json`` (a dict).

        Keys that are not Jamba fields (``architectures``, ``torch_dtype``,
        ``transformers_version``, …) are ignored; ``num_local_experts`` is read as
        ``num_experts``, as transformers does.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"from_dict: expected a mapping (a parsed config.json), got {type(d)}")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in d.items():
            key = _ALIASES.get(key, key)
            if key in names:
                kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict, in transformers' ``config.json`` vocabulary."""
        out = dataclasses.asdict(self)
        out["model_type"] = "jamba"
        out["architectures"] = ["JambaForCausalLM"]
        return out

    def replace(self, **changes: Any) -> JambaConfig:
        """A copy with some fields changed (validated like a new config).

        ``mamba_dt_rank`` is recomputed when ``hidden_size`` changes and the rank is not given.
        """
        fields = dataclasses.asdict(self)
        if "hidden_size" in changes and "mamba_dt_rank" not in changes:
            fields["mamba_dt_rank"] = "auto"
        fields.update(changes)
        return JambaConfig(**fields)

    def architecture(self) -> dict[str, Any]:
        """The fields that a model fixes when it is built: all but :data:`RUNTIME_FIELDS`."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in RUNTIME_FIELDS
        }

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field whose value is not allowed."""
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "num_experts_per_tok",
            "num_experts",
            "expert_layer_period",
            "attn_layer_period",
            "mamba_d_state",
            "mamba_d_conv",
            "mamba_expand",
            "mamba_dt_rank",
        ):
            _check_positive_int(name, getattr(self, name))
        for name in ("expert_layer_offset", "attn_layer_offset"):
            _check_int(name, getattr(self, name))
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("tie_word_embeddings", "mamba_conv_bias", "mamba_proj_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

        if self.attn_layer_offset >= self.attn_layer_period:
            raise ValueError(
                f"attn_layer_offset must be smaller than attn_layer_period "
                f"({self.attn_layer_period}), got {self.attn_layer_offset}"
            )
        if self.expert_layer_offset >= self.expert_layer_period:
            raise ValueError(
                f"expert_layer_offset must be smaller than expert_layer_period "
                f"({self.expert_layer_period}), got {self.expert_layer_offset}"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"num_attention_heads must divide hidden_size ({self.hidden_size}), "
                f"got {self.num_attention_heads}"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_key_value_heads must divide num_attention_heads "
                f"({self.num_attention_heads}), got {self.num_key_value_heads}"
            )
        if self.num_experts_per_tok > self.num_experts:
            raise ValueError(
                f"num_experts_per_tok must be at most num_experts ({self.num_experts}), "
                f"got {self.num_experts_per_tok}"
            )
        if self.hidden_act not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"hidden_act must be one of {HIDDEN_ACTIVATIONS}, got {self.hidden_act!r}"
            )
        for name in ("rms_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if not is_real(value) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not is_real(self.router_aux_loss_coef) or self.router_aux_loss_coef < 0:
            raise ValueError(
                f"router_aux_loss_coef must be a number >= 0, got {self.router_aux_loss_coef!r}"
            )
        if not is_real(self.attention_dropout) or not 0 <= self.attention_dropout < 1:
            raise ValueError(f"attention_dropout must be in [0, 1), got {self.attention_dropout!r}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def head_dim(self) -> int:
        """Size of one attention head: ``hidden_size // num_attention_heads``."""
        return self.hidden_size // self.num_attention_heads

    @property
    def mamba_d_inner(self) -> int:
        """Width of the Mamba mixer's inner stream, ``d_inner = mamba_expand * hidden_size``."""
        return self.mamba_expand * self.hidden_size

    # ------------------------------------------------------------------ the schedule
    def is_attention_layer(self, i: int) -> bool:
        """Whether layer ``i`` mixes tokens with attention (else with Mamba)."""
        return self._layer_index(i) % self.attn_layer_period == self.attn_layer_offset

    def is_moe_layer(self, i: int) -> bool:
        """Whether layer ``i`` has a mixture-of-experts MLP (else a dense MLP).

        With ``num_experts == 1`` a "MoE" layer is an ordinary dense MLP, as in transformers.
        """
        i = self._layer_index(i)
        return self.num_experts > 1 and i % self.expert_layer_period == self.expert_layer_offset

    def attention_layers(self) -> list[int]:
        """Indices of the attention layers, e.g. ``[4, 12, 20, 28]`` for Jamba v0.1."""
        return [i for i in range(self.num_hidden_layers) if self.is_attention_layer(i)]

    def mamba_layers(self) -> list[int]:
        """Indices of the Mamba layers."""
        return [i for i in range(self.num_hidden_layers) if not self.is_attention_layer(i)]

    def moe_layers(self) -> list[int]:
        """Indices of the layers whose MLP is a mixture of experts."""
        return [i for i in range(self.num_hidden_layers) if self.is_moe_layer(i)]

    @property
    def layers_block_type(self) -> list[str]:
        """``"attention"`` or ``"mamba"`` per layer (transformers' property of the same name)."""
        return [
            "attention" if self.is_attention_layer(i) else "mamba"
            for i in range(self.num_hidden_layers)
        ]

    @property
    def layers_num_experts(self) -> list[int]:
        """Experts per layer, 1 for a dense MLP (transformers' property of the same name)."""
        return [
            self.num_experts if i % self.expert_layer_period == self.expert_layer_offset else 1
            for i in range(self.num_hidden_layers)
        ]

    def block_card(self) -> dict[str, Any]:
        """The paper's summary of the model's schedule: (l, a:m, e, n, K).

        ``l``: layers in one Jamba block, the shortest run of layers whose attention/Mamba pattern
        repeats to make up the whole model (so a block never holds more layers than the model);
        ``a:m``: that block's attention and Mamba layers; ``e`` the MoE period, ``n`` experts per
        MoE layer, ``K`` experts used per token. Jamba v0.1: l = 8, a:m = 1:7. A pure Mamba
        model is 0:1 with l = 1, a pure Transformer 1:0.
        """
        kinds = [self.is_attention_layer(i) for i in range(self.num_hidden_layers)]
        depth = len(kinds)
        block = next(
            p
            for p in range(1, depth + 1)
            if depth % p == 0 and all(kinds[i] == kinds[i % p] for i in range(depth))
        )
        a = sum(kinds[:block])
        return {
            "l": block,
            "a:m": f"{a}:{block - a}",
            "e": self.expert_layer_period,
            "n": self.num_experts,
            "K": self.num_experts_per_tok,
        }

    def _layer_index(self, i: int) -> int:
        _check_int("layer index", i)
        if not 0 <= i < self.num_hidden_layers:
            raise ValueError(f"layer index must be in [0, {self.num_hidden_layers}), got {i}")
        return i


def is_int(value: Any) -> bool:
    """An int and not a bool (``True`` is an ``int`` to Python, never a size or an id here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """An int or a float, and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(name: str, value: Any) -> None:
    if not is_int(value):
        raise ValueError(f"{name} must be an int, got {value!r}")


def _check_positive_int(name: str, value: Any) -> None:
    _check_int(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_hidden_states(x: Any, hidden_size: int, what: str, one_token: bool = False) -> None:
    """Raise ``ValueError`` unless ``x`` is a tensor ``(batch, L, hidden_size)`` (or, for one
    token, ``(batch, hidden_size)``); ``what`` names the caller in the message."""
    dims, shape = (2, "(batch, hidden_size)") if one_token else (3, "(batch, L, hidden_size)")
    if not isinstance(x, Tensor) or x.dim() != dims or x.shape[-1] != hidden_size:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{what}: hidden_states must have shape {shape} with hidden_size = {hidden_size}, "
            f"got {got}"
        )

"""Parameter and memory accounting from a config alone (chapter 0), and the bytes a scan must
move (chapter 4).

Nothing here allocates a tensor: the counts follow from the shapes that the layers will have,
layer by layer, so they work for a 52B-parameter model on a laptop. The tests check every count
against transformers' ``JambaForCausalLM`` built on the ``meta`` device.

A pure Transformer is a Jamba config whose every layer attends (``attn_layer_period=1``), and
Mixtral is one whose every layer has experts (``expert_layer_period=1``); :func:`paper_models`
uses this to express the models of the paper's Table 1 in the same vocabulary.
"""

from __future__ import annotations

from .config import JambaConfig

__all__ = [
    "PAPER_TABLE1",
    "attention_params",
    "count_params",
    "kv_cache_bytes",
    "mamba_mixer_params",
    "mamba_state_bytes",
    "mlp_params",
    "paper_models",
    "param_breakdown",
    "scan_bytes",
]


def _check_config(cfg: object) -> None:
    if not isinstance(cfg, JambaConfig):
        raise ValueError(f"cfg must be a jamba_min.JambaConfig, got {type(cfg).__name__}")


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def mamba_mixer_params(cfg: JambaConfig) -> int:
    """Parameters of one Mamba mixer (``in_proj`` … ``out_proj`` and the dt/B/C norms)."""
    d, di, n, r = cfg.hidden_size, cfg.mamba_d_inner, cfg.mamba_d_state, cfg.mamba_dt_rank
    proj_bias, conv_bias = int(cfg.mamba_proj_bias), int(cfg.mamba_conv_bias)
    return (
        d * 2 * di + proj_bias * 2 * di  # in_proj: x and the gate z
        + di * cfg.mamba_d_conv + conv_bias * di  # depthwise causal conv1d
        + di * (r + 2 * n)  # x_proj: dt (low rank), B, C
        + r * di + di  # dt_proj (with bias)
        + di * n + di  # A_log, D
        + di * d + proj_bias * d  # out_proj
        + r + 2 * n  # RMSNorm weights on dt, B and C
    )  # fmt: skip


def attention_params(cfg: JambaConfig) -> int:
    """Parameters of one attention mixer: q, k, v, o projections, no biases."""
    q = cfg.num_attention_heads * cfg.head_dim
    kv = cfg.num_key_value_heads * cfg.head_dim
    return cfg.hidden_size * (q + 2 * kv) + q * cfg.hidden_size


def mlp_params(cfg: JambaConfig) -> int:
    """Parameters of one SwiGLU MLP (``gate_proj``, ``up_proj``, ``down_proj``); also one expert."""
    return 3 * cfg.hidden_size * cfg.intermediate_size


def param_breakdown(cfg: JambaConfig) -> dict[str, int]:
    """Parameter count of each kind of part, summed over the model.

    Keys: ``embedding``, ``lm_head`` (0 when tied), ``mamba``, ``attention``, ``mlp`` (dense),
    ``experts`` (all experts of all MoE layers), ``router``, ``norms``. Their sum is the total.
    """
    _check_config(cfg)
    layers = range(cfg.num_hidden_layers)
    n_attn = sum(cfg.is_attention_layer(i) for i in layers)
    n_moe = sum(cfg.is_moe_layer(i) for i in layers)
    embedding = cfg.vocab_size * cfg.hidden_size
    return {
        "embedding": embedding,
        "lm_head": 0 if cfg.tie_word_embeddings else embedding,
        "mamba": (cfg.num_hidden_layers - n_attn) * mamba_mixer_params(cfg),
        "attention": n_attn * attention_params(cfg),
        "mlp": (cfg.num_hidden_layers - n_moe) * mlp_params(cfg),
        "experts": n_moe * cfg.num_experts * mlp_params(cfg),
        "router": n_moe * cfg.num_experts * cfg.hidden_size,
        # input_layernorm + pre_ff_layernorm per layer, and final_layernorm
        "norms": (2 * cfg.num_hidden_layers + 1) * cfg.hidden_size,
    }


def count_params(cfg: JambaConfig) -> dict[str, int]:
    """Total parameters, and the active ones: those one token passes through.

    A token uses every parameter except the experts it is not routed to: in each MoE layer,
    ``num_experts - num_experts_per_tok`` experts sit idle. (The embedding row lookup counts as
    active, as in the paper's 12B.)

    Returns:
        ``{"total": int, "active": int}``; for the default config 51,570,323,328 and
        12,110,311,296 (the paper's "52B" and "12B").
    """
    parts = param_breakdown(cfg)
    total = sum(parts.values())
    idle_experts = cfg.num_experts - cfg.num_experts_per_tok
    n_moe = len(cfg.moe_layers())
    active = total - n_moe * idle_experts * mlp_params(cfg)
    return {"total": total, "active": active}


def kv_cache_bytes(cfg: JambaConfig, seq_len: int, batch: int = 1, dtype_bytes: int = 2) -> int:
    """Bytes of the attention layers' key-value cache.

    ``2 (keys and values) × attention layers × num_key_value_heads × head_dim × seq_len × batch ×
    dtype_bytes``. Mamba layers hold no KV cache (see :func:`mamba_state_bytes`). For the default
    config at 256K tokens in 16-bit this is 4 GiB, the paper's Table 1.
    """
    _check_config(cfg)
    _check_count("seq_len", seq_len, 0)
    _check_count("batch", batch, 1)
    _check_count("dtype_bytes", dtype_bytes, 1)
    per_token = 2 * len(cfg.attention_layers()) * cfg.num_key_value_heads * cfg.head_dim
    return per_token * seq_len * batch * dtype_bytes


def mamba_state_bytes(cfg: JambaConfig, batch: int = 1, dtype_bytes: int = 2) -> int:
    """Bytes of the Mamba layers' recurrent state; constant in the sequence length.

    Per Mamba layer and sequence: the SSM state ``(d_inner, d_state)`` plus the last ``d_conv``
    inputs of the causal convolution ``(d_inner, d_conv)``.
    """
    _check_config(cfg)
    _check_count("batch", batch, 1)
    _check_count("dtype_bytes", dtype_bytes, 1)
    per_layer = cfg.mamba_d_inner * (cfg.mamba_d_state + cfg.mamba_d_conv)
    return len(cfg.mamba_layers()) * per_layer * batch * dtype_bytes


def scan_bytes(batch: int, d_inner: int, d_state: int, L: int, mode: str = "fwd") -> int:
    """Bytes a float32 selective scan must move between GPU memory (HBM) and the chip, at least.

    Shapes as :func:`jamba_min.selective_scan` takes them: ``u``, ``delta`` and the gate ``z`` are
    ``(batch, d_inner, L)``, ``B`` and ``C`` ``(batch, d_state, L)``, the output ``y`` is
    ``(batch, d_inner, L)``; 4 bytes a number. States never leave the chip in this count (the
    floor under a fused kernel, chapter 4), and the per-channel ``A``, ``D`` and ``delta_bias``,
    too small to matter, are left out.

    ``mode="fwd"``: read ``u``, ``delta``, ``z``, ``B``, ``C`` and write ``y``,
    ``4 · (4 · batch · d_inner · L + 2 · batch · d_state · L)`` bytes. ``mode="fwd+bwd"`` adds a
    backward that reads the five inputs again with ∂L/∂y, writes the gradients of all five, and
    reads ∂L/∂Δ once more (to sum it into the gradient of ``delta_bias``).

    Returns:
        bytes, an int; divided by a time in seconds, the bandwidth that time implies.
    """
    for name, value in (("batch", batch), ("d_inner", d_inner), ("d_state", d_state), ("L", L)):
        _check_count(name, value, 1)
    if mode not in ("fwd", "fwd+bwd"):
        raise ValueError(f"mode must be 'fwd' or 'fwd+bwd', got {mode!r}")
    inputs = 4 * (3 * batch * d_inner * L + 2 * batch * d_state * L)  # u, Δ, z and B, C
    one = 4 * batch * d_inner * L  # one (batch, d_inner, L) tensor: y, ∂L/∂y, ∂L/∂Δ
    fwd = inputs + one
    return fwd if mode == "fwd" else fwd + 2 * inputs + 2 * one


def paper_models() -> dict[str, JambaConfig]:
    """The models of the paper's Table 1, each as a ``JambaConfig`` built from its public config.

    Llama-2 and Mistral are all-attention, all-dense Jambas; Mixtral is all-attention with 8
    experts (top 2) in every layer. Mistral's 4096-token sliding window is ignored, as the table
    ignores it. Fields that a model does not use (the Mamba sizes) keep their defaults.
    """
    transformer = dict(
        attn_layer_period=1, attn_layer_offset=0, num_experts=1, num_experts_per_tok=1
    )
    return {
        "Llama-2 6.7B": JambaConfig(
            vocab_size=32000,
            intermediate_size=11008,
            num_key_value_heads=32,
            **transformer,
        ),
        "Mistral 7.2B": JambaConfig(vocab_size=32000, **transformer),
        "Mixtral 46.7B": JambaConfig(
            vocab_size=32000,
            attn_layer_period=1,
            attn_layer_offset=0,
            expert_layer_period=1,
            expert_layer_offset=0,
            num_experts=8,
            num_experts_per_tok=2,
        ),
        "Jamba 52B": JambaConfig(),
    }


#: What the paper's Table 1 prints (parameters as rounded there; KV cache at 256K tokens, 16-bit,
#: in the paper's "GB", which are GiB). Reference values to compare against, not inputs.
PAPER_TABLE1 = {
    "Llama-2 6.7B": {"params": "6.7B", "active": "6.7B", "kv_cache_gb": 128},
    "Mistral 7.2B": {"params": "7.2B", "active": "7.2B", "kv_cache_gb": 32},
    "Mixtral 46.7B": {"params": "46.7B", "active": "12.9B", "kv_cache_gb": 32},
    "Jamba 52B": {"params": "52B", "active": "12B", "kv_cache_gb": 4},
}

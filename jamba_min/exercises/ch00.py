"""Graders of chapter 0, Jamba at a glance: active parameters, a memory budget, the KV cache."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..accounting import count_params, paper_models
from ..config import JambaConfig
from ._common import call, compare_values, grader
from .general import key_facts

__all__ = ["check_active_params", "check_kv_cache_answer", "check_max_context"]


def exercise_configs() -> list[tuple[str, JambaConfig]]:
    """Configs that exercise every branch: defaults, the paper's models, odd schedules."""
    configs = list(paper_models().items())
    configs += [
        ("tiny hybrid", JambaConfig(
            vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=6,
            num_attention_heads=4, num_key_value_heads=2, num_experts=4,
            attn_layer_period=3, attn_layer_offset=1,
        )),
        ("biased projections, no conv bias", JambaConfig(
            hidden_size=96, intermediate_size=80, num_hidden_layers=5, num_attention_heads=3,
            num_key_value_heads=1, mamba_proj_bias=True, mamba_conv_bias=False,
            mamba_d_state=7, mamba_d_conv=3, mamba_expand=3, mamba_dt_rank=5,
        )),
        ("pure Mamba, tied, top-1", JambaConfig(
            vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=4,
            num_attention_heads=2, num_key_value_heads=2, attn_layer_period=5,
            attn_layer_offset=4, num_experts=3, num_experts_per_tok=1, tie_word_embeddings=True,
        )),
    ]  # fmt: skip
    return configs


@grader
def check_active_params(fn: Callable[[JambaConfig], int]) -> None:
    """Grade ``fn(cfg) -> int``: the parameters one token passes through (chapter 0)."""
    name = "check_active_params"
    compare_values(
        name,
        [
            (label, call(name, label, fn, cfg), count_params(cfg)["active"])
            for label, cfg in exercise_configs()
        ],
    )


def _memory(cfg: JambaConfig, batch: int, weight_bytes: int, cache_bytes: int) -> tuple[int, int]:
    """The grader's own reference, from the config's fields: (bytes that do not depend on the
    context: the weights and the Mamba state; bytes per token of context: the KV cache)."""
    layers = range(cfg.num_hidden_layers)
    n_attn = sum(i % cfg.attn_layer_period == cfg.attn_layer_offset for i in layers)
    n_mamba = cfg.num_hidden_layers - n_attn
    weights = count_params(cfg)["total"] * weight_bytes
    state = n_mamba * cfg.mamba_d_inner * (cfg.mamba_d_state + cfg.mamba_d_conv)
    per_token = 2 * n_attn * cfg.num_key_value_heads * cfg.head_dim
    return weights + state * batch * cache_bytes, per_token * batch * cache_bytes


def _max_context(
    cfg: JambaConfig, budget: int, batch: int, weight_bytes: int, cache_bytes: int
) -> int | float | None:
    fixed, per_token = _memory(cfg, batch, weight_bytes, cache_bytes)
    if fixed > budget:
        return None
    if per_token == 0:
        return math.inf
    return (budget - fixed) // per_token


@grader
def check_max_context(fn: Callable[[JambaConfig, int, int, int, int], object]) -> None:
    """Grade ``fn(cfg, budget_bytes, batch, weight_bytes, cache_bytes)``: the longest context.

    The answer is the largest whole number of tokens L such that the weights (every parameter,
    ``weight_bytes`` each), the Mamba state of ``batch`` sequences and their KV cache of L tokens
    (both ``cache_bytes`` a number) fit in ``budget_bytes``; ``None`` when not even the weights
    and the state fit, ``math.inf`` when there is no KV cache (chapter 0). The cases include a
    budget that is exactly full, one that is one byte short, and a pure-Mamba config.
    """
    name = "check_max_context"
    gib = 2**30
    cases = []

    def add(label: str, cfg: JambaConfig, budget: int, batch: int, wb: int, cb: int) -> None:
        want = _max_context(cfg, budget, batch, wb, cb)
        cases.append((label, call(name, label, fn, cfg, budget, batch, wb, cb), want))

    models = paper_models()
    for model in ("Jamba 52B", "Mixtral 46.7B", "Llama-2 6.7B"):
        add(f"{model}, 80 GiB, 8-bit weights", models[model], 80 * gib, 1, 1, 2)
    jamba = models["Jamba 52B"]
    add("Jamba 52B, 80 GiB, 16-bit weights", jamba, 80 * gib, 1, 2, 2)
    add("Jamba 52B, 320 GiB, batch 8, 16-bit", jamba, 320 * gib, 8, 2, 2)
    batch, wb, cb = 3, 4, 4
    for label, cfg in exercise_configs()[4:]:
        fixed, per_token = _memory(cfg, batch, wb, cb)
        if per_token == 0:
            add(f"{label}, no KV cache at all", cfg, fixed + 12345, batch, wb, cb)
        else:
            exact = fixed + 100 * per_token
            add(f"{label}, a budget exactly full at 100 tokens", cfg, exact, batch, wb, cb)
            add(f"{label}, one byte short of 100 tokens", cfg, exact - 1, batch, wb, cb)
        add(f"{label}, one byte short of the weights and state", cfg, fixed - 1, batch, wb, cb)
    compare_values(name, cases)


@grader
def check_kv_cache_answer(answer: str) -> None:
    """Grade the explanation of why Mixtral's KV cache equals Mistral's, and how to shrink it
    without touching the experts (chapter 0)."""
    key_facts(
        "check_kv_cache_answer",
        answer,
        [
            (
                "what the cache is made of (keys and values of the attention layers, per "
                "key-value head)",
                [r"attention", r"\bkv\b", r"key.?value", r"\bkeys?\b"],
            ),
            (
                "why the experts add nothing to it (they are feed-forward layers, which keep "
                "nothing from earlier tokens)",
                [r"expert", r"feed.?forward", r"\bmlp", r"\bmoe\b"],
            ),
            (
                "how to shrink it (fewer attention layers, e.g. Mamba layers in their place, "
                "or fewer key-value heads)",
                [r"mamba", r"fewer", r"replac", r"reduc", r"less(er)? attention", r"remov"],
            ),
        ],
    )

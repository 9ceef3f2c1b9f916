"""Graders for the exercises at the end of each chapter.

Each ``check_*`` function takes the reader's implementation, runs it on a set of configurations
(including awkward ones), compares it with the package's own answer, and either prints one line
saying it passed or raises ``AssertionError`` describing the first case that differs.

    >>> from jamba_min.exercises import check_kv_cache_bytes
    >>> check_kv_cache_bytes(my_kv_cache_bytes)  # doctest: +SKIP
    ✓ check_kv_cache_bytes: 12 cases agree
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .accounting import count_params, kv_cache_bytes, mamba_mixer_params, paper_models
from .config import JambaConfig

__all__ = ["check_active_params", "check_kv_cache_bytes", "check_mamba_mixer_params"]


def _exercise_configs() -> list[tuple[str, JambaConfig]]:
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


def _compare(
    name: str,
    cases: Iterable[tuple[str, tuple[Any, ...], Any]],
    fn: Callable[..., Any],
) -> None:
    n = 0
    for label, args, want in cases:
        got = fn(*args)
        if got != want:
            raise AssertionError(f"{name}: for {label}, expected {want!r}, got {got!r}")
        n += 1
    print(f"✓ {name}: {n} cases agree")


def check_mamba_mixer_params(fn: Callable[[JambaConfig], int]) -> None:
    """Grade ``fn(cfg) -> int``: the parameters of one Mamba mixer (chapter 0)."""
    cases = [(label, (cfg,), mamba_mixer_params(cfg)) for label, cfg in _exercise_configs()]
    _compare("check_mamba_mixer_params", cases, fn)


def check_active_params(fn: Callable[[JambaConfig], int]) -> None:
    """Grade ``fn(cfg) -> int``: the parameters one token passes through (chapter 0)."""
    cases = [(label, (cfg,), count_params(cfg)["active"]) for label, cfg in _exercise_configs()]
    _compare("check_active_params", cases, fn)


def check_kv_cache_bytes(fn: Callable[[JambaConfig, int, int, int], int]) -> None:
    """Grade ``fn(cfg, seq_len, batch, dtype_bytes) -> int``: the KV-cache size (chapter 0)."""
    cases = []
    for label, cfg in _exercise_configs():
        for seq_len, batch, dtype_bytes in [(262144, 1, 2), (1000, 3, 4)]:
            args = (cfg, seq_len, batch, dtype_bytes)
            cases.append((f"{label}, {seq_len} tokens × batch {batch} × {dtype_bytes} B", args,
                          kv_cache_bytes(*args)))  # fmt: skip
    _compare("check_kv_cache_bytes", cases, fn)

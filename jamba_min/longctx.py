"""Decoding at long context (chapter 11): what one new token costs, in time and in memory.

The paper's practical case for the hybrid is its decoding state: an attention layer keeps the
keys and values of every token it has seen, a Mamba layer a state of fixed size. A model with
one attention layer in eight holds an eighth of the KV cache of an all-attention model of the
same depth, and each decoding step reads an eighth as much of it.

:func:`decode_cost` measures both for one model at one context length: tokens per second of
greedy one-token steps after a prefill, and the bytes its :class:`~jamba_min.model.HybridCache`
holds, measured on the tensors and checked equal to the formulas of chapter 0
(:func:`~jamba_min.accounting.kv_cache_bytes`, :func:`~jamba_min.accounting.mamba_state_bytes`).
Its two halves, :func:`prefill` and :func:`time_steps`, let a benchmark interleave many models
and contexts in one run. :func:`decode_configs` gives the three architectures at about equal
parameter count (:func:`~jamba_min.ablation.ablation_config`).

The models need no training: the time and memory of a step do not depend on the weights. So
the attention-only model goes without the learned positions it would need to learn anything
(chapter 10); they would add one row lookup per step.
"""

from __future__ import annotations

import statistics
import time

import torch

from .accounting import kv_cache_bytes
from .attention import KVCache
from .config import JambaConfig, is_int
from .mamba import MambaState

__all__ = [
    "ARCHITECTURES", "decode_configs", "decode_cost", "formula_bytes", "held_bytes", "prefill",
    "time_steps",
]  # fmt: skip

#: the architectures compared, as :data:`jamba_min.ablation.SCHEDULES` names them
ARCHITECTURES = ("attention", "hybrid 1:7", "mamba")


def _check(name: str, value: object, low: int) -> None:
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def decode_configs(
    hidden_size: int = 256, num_hidden_layers: int = 8, architectures=ARCHITECTURES
) -> dict[str, JambaConfig]:
    """``{architecture: config}`` of about equal parameter count (dense MLPs; an attention
    mixer is lighter than a Mamba mixer, so models with attention get wider MLPs to match)."""
    from .ablation import ablation_config

    return {
        a: ablation_config(a, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers)
        for a in architectures
    }


@torch.inference_mode()
def prefill(model, context: int, batch: int = 1, room: int = 0, seed: int = 0):
    """Run ``(batch, context)`` random token ids through ``model`` (a ``JambaForCausalLM``) and
    return its output: ``out.cache`` holds the context, ``out.logits`` the last position's
    logits. Every attention cache is reserved for ``room`` more tokens, as ``generate`` does,
    so that no decoding step copies it."""
    _check("context", context, 1)
    _check("batch", batch, 1)
    _check("room", room, 0)
    model.eval()
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch, context), generator=g)
    out = model._forward(ids.to(model.lm_head.weight.device), None, True, last_only=True)
    for state in out.cache.layers:
        if isinstance(state, KVCache):
            state.reserve(context + room)
    return out


@torch.inference_mode()
def time_steps(model, out, steps: int, warmup: int = 2) -> list[float]:
    """Seconds of each of ``steps`` greedy decoding steps from ``out`` (a :func:`prefill`'s
    output), after ``warmup`` untimed ones; the cache is put back as it was afterwards, so
    that the next call decodes from the same state.

    Each step is what ``generate`` does for a token: the argmax of the last logits, fed back
    through the model's unchecked forward; timed alone with ``time.perf_counter``.
    """
    _check("steps", steps, 1)
    _check("warmup", warmup, 0)
    cache = out.cache
    layers = list(cache.layers)  # Mamba steps replace their state; attention appends in place
    lengths = [s.length if isinstance(s, KVCache) else None for s in layers]
    sync = torch.cuda.synchronize if out.logits.is_cuda else (lambda: None)
    times = []
    try:
        for i in range(warmup + steps):
            token = out.logits[:, -1].argmax(-1, keepdim=True)  # (batch, 1)
            start = time.perf_counter()
            out = model._forward(token, cache, False)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    finally:  # forget the new tokens: the appended keys are no longer seen
        cache.layers = layers
        for state, length in zip(layers, lengths, strict=True):
            if length is not None:
                state.length = length
    return times


def held_bytes(cache) -> dict[str, int]:
    """Bytes held by a :class:`~jamba_min.model.HybridCache`, measured on its tensors.

    ``kv_bytes``: keys and values of the tokens held (the used part of each attention layer's
    :class:`~jamba_min.attention.KVCache`); ``kv_allocated_bytes``: the storage those caches
    have allocated (≥ ``kv_bytes``: a cache grows by doubling, or as reserved);
    ``mamba_bytes``: conv windows and SSM states of the Mamba layers; ``cache_bytes``:
    ``kv_bytes + mamba_bytes``.
    """
    kv = [s for s in cache.layers if isinstance(s, KVCache)]
    mamba = [s for s in cache.layers if isinstance(s, MambaState)]
    held = {
        "kv_bytes": sum(s.nbytes() for s in kv),
        "kv_allocated_bytes": sum(s.allocated_nbytes() for s in kv),
        "mamba_bytes": sum(s.conv.nbytes + s.ssm.nbytes for s in mamba),
    }
    return held | {"cache_bytes": held["kv_bytes"] + held["mamba_bytes"]}


def formula_bytes(config: JambaConfig, tokens: int, batch: int, dtype_bytes: int) -> dict:
    """``kv_bytes`` and ``mamba_bytes`` from chapter 0's formulas, for a model whose weights
    take ``dtype_bytes`` a number. The SSM state h is float32 for a 16-bit model (float64 for
    float64), so the Mamba formula counts the conv window and h each in its own dtype."""
    di, layers = config.mamba_d_inner, len(config.mamba_layers())
    ssm_bytes = max(dtype_bytes, 4)
    per_layer = di * (config.mamba_d_conv * dtype_bytes + config.mamba_d_state * ssm_bytes)
    return {
        "kv_bytes": kv_cache_bytes(config, tokens, batch, dtype_bytes),
        "mamba_bytes": layers * per_layer * batch,  # = mamba_state_bytes when ssm_bytes equal
    }


def decode_cost(
    model, context: int, steps: int = 32, batch: int = 1, warmup: int = 2, repeat: int = 1
) -> dict:
    """Speed of one-token decoding after a prefill of ``context`` tokens, and the cache's size.

    ``model``: a ``JambaForCausalLM`` (put in eval mode). It prefills ``(batch, context)``
    random ids, then times ``steps`` greedy steps (after ``warmup``) ``repeat`` times from the
    same state (see :func:`time_steps`).

    The rate comes from the fastest step, as ``timeit`` advises: on a shared machine a step
    can only be slowed by others (with 2 threads, a step waits whenever the second thread
    has lost its core), so the fastest one is the best estimate of what the code costs. The
    best round's median is returned too.

    Returns a dict: ``context``, ``steps``, ``batch``, ``tokens_per_s`` (``batch`` / the
    fastest step), ``step_s`` (the fastest step), ``step_s_median`` (the best round's median
    step), ``prefill_s``, and the bytes held with the context in the cache, as
    :func:`held_bytes` counts them: ``kv_bytes``, ``kv_allocated_bytes`` (reserved for the
    steps too), ``mamba_bytes``, ``cache_bytes``. A ``RuntimeError`` is raised if
    ``kv_bytes`` or ``mamba_bytes`` differ from the formulas (:func:`formula_bytes`).
    """
    _check("context", context, 1)
    _check("steps", steps, 1)
    _check("batch", batch, 1)
    _check("warmup", warmup, 0)
    _check("repeat", repeat, 1)
    start = time.perf_counter()
    out = prefill(model, context, batch, room=warmup + steps)
    prefill_s = time.perf_counter() - start
    rounds = [time_steps(model, out, steps, warmup) for _ in range(repeat)]
    step_s = min(min(r) for r in rounds)
    held = held_bytes(out.cache)
    dtype_bytes = model.lm_head.weight.element_size()
    want = formula_bytes(model.config, context, batch, dtype_bytes)
    for key, value in want.items():
        if held[key] != value:
            raise RuntimeError(f"{key}: measured {held[key]} bytes, the formula gives {value}")
    return {
        "context": context, "steps": steps, "batch": batch, "tokens_per_s": batch / step_s,
        "step_s": step_s, "step_s_median": min(statistics.median(r) for r in rounds),
        "prefill_s": prefill_s,
        **held,
    }  # fmt: skip

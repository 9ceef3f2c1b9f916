"""Graders of chapter 8, the Jamba block: greedy decoding through the hybrid cache, and the
bytes each layer's cache holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..config import JambaConfig
from ._common import call, compare_tensors, compare_values, gen, grader

__all__ = ["check_greedy_decode", "check_layer_cache_bytes"]

_SMALL = dict(
    vocab_size=40,
    hidden_size=16,
    intermediate_size=24,
    num_attention_heads=4,
    num_key_value_heads=2,
    num_experts=3,
    num_experts_per_tok=2,
    mamba_d_state=4,
)


def _configs() -> list[tuple[str, JambaConfig]]:
    """Small configs with different schedules: the grader's models."""
    return [
        (
            "4 layers, attention at 1 and 3, MoE at 1 and 3",
            JambaConfig(**_SMALL, num_hidden_layers=4, attn_layer_period=2, attn_layer_offset=1),
        ),
        (
            "a pure Mamba model of 3 layers",
            JambaConfig(**_SMALL, num_hidden_layers=3, attn_layer_period=8, attn_layer_offset=5),
        ),
        (
            "a pure Transformer of 2 layers (MQA)",
            JambaConfig(
                **{**_SMALL, "num_key_value_heads": 1},
                num_hidden_layers=2,
                attn_layer_period=1,
                attn_layer_offset=0,
            ),
        ),
    ]


@grader
def check_greedy_decode(fn: Callable[[Any, torch.Tensor, int], torch.Tensor]) -> None:
    """Grade ``fn(model, prompt, steps) -> ids``: greedy decoding through the hybrid cache.

    model: a ``jm.JambaForCausalLM``; prompt: ``(b, L)`` int64; ids: ``(b, L + steps)``, the
    prompt followed by ``steps`` tokens, each the argmax of the logits at the last position, as
    ``model.generate(prompt, steps)`` returns them (chapter 8). The model must run once over the
    prompt with ``return_cache=True`` and then on one token at a time with ``cache=``: the
    grader counts the tokens it is given, and re-running the whole sequence fails. The models
    are small float64 ones: a hybrid, a pure Mamba model and a pure Transformer.
    """
    name = "check_greedy_decode"
    cases = []
    settings = [(0, 2, 5, 6), (1, 1, 1, 4), (2, 3, 4, 3), (0, 1, 3, 1)]  # (config, b, L, steps)
    configs = _configs()
    for seed, (c, b, L, steps) in enumerate(settings):
        what, config = configs[c]
        torch.manual_seed(seed)
        model = _model(config)
        prompt = torch.randint(0, config.vocab_size, (b, L), generator=gen(seed))
        with torch.no_grad():
            want = model.generate(prompt, steps)
        fed: list[int] = []
        handle = model.register_forward_pre_hook(
            lambda _m, args, kwargs, fed=fed: fed.append(_length(args, kwargs)),
            with_kwargs=True,
        )
        label = f"{what}, prompt (b, L) = {(b, L)}, {steps} steps"

        def decode(prompt: torch.Tensor, steps: int, model: Any = model) -> Any:
            return fn(model, prompt, steps)

        try:
            got = call(name, label, decode, prompt, steps)
        finally:
            handle.remove()
        need = L + steps - 1  # the prompt, then every new token but the last
        if sum(fed) > need + 1 or (fed and fed[0] != L):
            raise AssertionError(
                f"{name}: for {label}, the model was run on {sum(fed)} tokens in all "
                f"({fed[:6]}…); from the cache it needs the prompt once, then one token per "
                f"step: {need}"
            )
        same_shape = isinstance(got, torch.Tensor) and got.shape == want.shape
        if same_shape and not torch.equal(got, want):
            row, t = (got != want).nonzero()[0].tolist()
            raise AssertionError(
                f"{name}: for {label}, row {row} differs from position {t} on (new token "
                f"{t - L + 1}): expected {want[row, t:].tolist()}, got {got[row, t:].tolist()}"
            )
        cases.append((label, got, want))
    compare_tensors(name, cases, tol=0)


def _model(config: JambaConfig) -> Any:
    from ..model import JambaForCausalLM

    model = JambaForCausalLM(config).double().eval()
    with torch.no_grad():  # sharper logits than at initialisation: no near-ties in the argmax
        model.lm_head.weight.mul_(20)
    return model


def _length(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    ids = args[0] if args else kwargs.get("input_ids")
    return int(ids.shape[1]) if isinstance(ids, torch.Tensor) and ids.dim() == 2 else 0


@grader
def check_layer_cache_bytes(fn: Callable[[JambaConfig, int, int, torch.dtype], Any]) -> None:
    """Grade ``fn(config, T, batch, dtype) -> list``: the bytes each layer's cache holds.

    One int per layer, in layer order, equal to what the :class:`~jamba_min.HybridCache` of a
    ``jm.JambaForCausalLM(config).to(dtype)`` holds for that layer after a prefill of ``batch``
    sequences of T tokens: an attention layer its keys and values ``(batch, G, T, d_h)`` each,
    in ``dtype``; a Mamba layer its convolution window ``(batch, d_inner, d_conv)`` in ``dtype``
    and its scan state ``(batch, d_inner, d_state)`` in float32, or float64 for a float64 model
    (chapter 8). The reference is a real prefill of a small model, not a formula; the cases
    include bfloat16, float64, T = 1, batch 1 and a pure Mamba model.
    """
    from ..attention import KVCache
    from ..model import JambaForCausalLM

    name = "check_layer_cache_bytes"
    configs = _configs()
    settings = [  # (config, T, batch, dtype)
        (0, 5, 2, torch.float32),
        (0, 1, 1, torch.bfloat16),
        (0, 9, 3, torch.float64),
        (1, 4, 2, torch.float16),
        (2, 7, 1, torch.bfloat16),
        (2, 3, 2, torch.float32),
    ]
    built: dict[tuple[int, torch.dtype], Any] = {}
    cases = []
    for c, T, batch, dtype in settings:
        what, config = configs[c]
        if (c, dtype) not in built:
            torch.manual_seed(0)
            built[c, dtype] = JambaForCausalLM(config).to(dtype).eval()
        ids = torch.randint(0, config.vocab_size, (batch, T), generator=gen(T))
        with torch.no_grad():
            cache = built[c, dtype](ids, return_cache=True).cache
        want = [
            s.nbytes() if isinstance(s, KVCache) else s.conv.nbytes + s.ssm.nbytes
            for s in cache.layers
        ]
        label = f"{what}, T={T}, batch={batch}, {dtype}"
        got = call(name, label, fn, config, T, batch, dtype)
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if isinstance(got, (list, tuple)):
            got = [int(v) if isinstance(v, (int, float)) else v for v in got]
        cases.append((label, got, want))
    compare_values(name, cases)

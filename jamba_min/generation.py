"""Generation from the hybrid cache: greedy decoding, sampling, end tokens (chapter 8).

The prompt runs once (the prefill), which leaves every layer's decoding state in a
:class:`~jamba_min.model.HybridCache`; then each new token is one step through it: Mamba layers
advance their fixed-size state, attention layers append a key and a value to their cache.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .attention import KVCache
from .config import is_int, is_real

__all__ = ["generate", "sample_next"]


@torch.no_grad()
def generate(
    model,
    input_ids: Tensor,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id: int | list[int] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Prefill the prompt ``(b, L)`` with ``model`` (a ``JambaForCausalLM``), then one token per
    step from the hybrid cache.

    Greedy when ``temperature == 0`` (the default); otherwise samples from the softmax at that
    temperature, restricted to the ``top_k`` most likely tokens and/or the smallest set whose
    probability reaches ``top_p`` (see :func:`sample_next`). ``eos_token_id``: an id or a list of
    ids that end a row; a row that produced one repeats it while other rows go on, and
    generation stops once every row has. Returns the prompt followed by the new tokens, int64,
    ``(b, L + steps)`` with ``steps ≤ max_new_tokens``. The model's training flag is restored
    however the call ends.
    """
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if not is_real(temperature) or not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(
            f"temperature must be a finite number > 0, or 0 for greedy, got {temperature!r}"
        )
    if top_k is not None and not (is_int(top_k) and top_k >= 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
    if top_p is not None and not (is_real(top_p) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")
    eos = _eos_ids(eos_token_id, model.config.vocab_size)
    input_ids = model._check_inputs(input_ids, None)
    was_training = model.training
    model.eval()
    try:

        def pick(logits: Tensor) -> Tensor:
            return sample_next(logits, temperature, top_k, top_p, generator)

        return _decode(model, input_ids, max_new_tokens, eos, pick)
    finally:
        model.train(was_training)


def _decode(model, input_ids: Tensor, max_new_tokens: int, eos: Tensor | None, pick) -> Tensor:
    b, L = input_ids.shape
    tokens = [input_ids]
    # inference_mode rather than no_grad: no autograd bookkeeping at all, which is a tenth
    # of a decoding step's time; the tokens are concatenated outside it, as normal tensors
    with torch.inference_mode():
        out = model._forward(input_ids, None, True, last_only=True)
        for state in out.cache.layers:  # room for the new tokens, up to a prompt's worth;
            if isinstance(state, KVCache):  # beyond that the cache doubles as it fills
                state.reserve(L + min(max_new_tokens, L))
        done = torch.zeros(b, dtype=torch.bool, device=input_ids.device)
        eos = eos.to(input_ids.device) if eos is not None else None
        for i in range(max_new_tokens):
            last = out.logits[:, -1]
            nxt = pick(last.to(torch.promote_types(last.dtype, torch.float32)))
            if eos is not None:
                nxt = torch.where(done, tokens[-1][:, -1], nxt)  # finished rows repeat
                done |= torch.isin(nxt, eos)
            tokens.append(nxt[:, None])
            if i + 1 == max_new_tokens or (eos is not None and bool(done.all())):
                break
            out = model._forward(nxt[:, None], out.cache, False)
    return torch.cat(tokens, dim=1)


def _eos_ids(eos_token_id: int | list[int] | None, vocab: int) -> Tensor | None:
    """``eos_token_id`` as a tensor of ids, after checking it."""
    if eos_token_id is None:
        return None
    ids = [eos_token_id] if is_int(eos_token_id) else eos_token_id
    if (
        not isinstance(ids, (list, tuple))
        or not ids
        or not all(is_int(i) and 0 <= i < vocab for i in ids)
    ):
        raise ValueError(
            f"eos_token_id must be an int or a non-empty list of ints in [0, vocab_size = "
            f"{vocab}), got {eos_token_id!r}"
        )
    return torch.tensor(ids)


def sample_next(
    logits: Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The next token of each row, ``(b,)``, from its logits ``(b, vocab)``.

    Greedy (the argmax) at temperature 0. A temperature so small that ``logits / temperature``
    overflows leaves no distribution to sample; such rows take their most likely token, the
    limit of sampling as the temperature goes to 0.
    """
    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits / temperature
    overflow = ~torch.isfinite(scaled.amax(-1, keepdim=True))
    if overflow.any():
        top = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.argmax(-1, True), True)
        scaled = torch.where(overflow, torch.where(top, 0.0, float("-inf")), scaled)
    logits = scaled
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop = probs.cumsum(-1) - probs >= top_p  # tokens after the nucleus is complete
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]

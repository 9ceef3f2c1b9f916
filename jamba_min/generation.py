"""Generation from the hybrid cache: greedy decoding, sampling, end tokens (chapter 8).

The prompt runs once (the prefill), which leaves every layer's decoding state in a
:class:`~jamba_min.model.HybridCache`; then each new token is one step through it: Mamba layers
advance their fixed-size state, attention layers append a key and a value to their cache.

Prompts of different lengths share a batch by padding on the left: ``attention_mask`` marks the
padding, the prefill keeps it out of every layer's state, and the attention caches remember it,
so that every row decodes as it would alone. (On the left, because each row's next token comes
from the last position, which must be real in every row.)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .attention import KVCache
from .config import is_int, is_real

__all__ = ["check_attention_mask", "generate", "sample_next"]


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
    attention_mask: Tensor | None = None,
) -> Tensor:
    """Prefill the prompt ``(b, L)`` with ``model`` (a ``JambaForCausalLM``), then one token per
    step from the hybrid cache.

    ``attention_mask`` ``(b, L)``: 1 at real tokens, 0 at the left padding of shorter prompts
    (see :func:`check_attention_mask`); the padding stays in front of the returned rows.

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
    attention_mask = check_attention_mask(attention_mask, input_ids)
    was_training = model.training
    model.eval()
    try:

        def pick(logits: Tensor) -> Tensor:
            return sample_next(logits, temperature, top_k, top_p, generator)

        return _decode(model, input_ids, attention_mask, max_new_tokens, eos, pick)
    finally:
        model.train(was_training)


def _decode(
    model, input_ids: Tensor, mask: Tensor | None, max_new_tokens: int, eos: Tensor | None, pick
) -> Tensor:
    b, L = input_ids.shape
    tokens = [input_ids]
    # inference_mode rather than no_grad: no autograd bookkeeping at all, which is a tenth
    # of a decoding step's time; the tokens are concatenated outside it, as normal tensors
    with torch.inference_mode():
        # the prefill; the attention caches remember the padding, the new tokens are all real
        out = model._forward(input_ids, None, True, last_only=True, attention_mask=mask)
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


def check_attention_mask(attention_mask: Tensor | None, input_ids: Tensor) -> Tensor | None:
    """The padding mask as bool ``(b, L)``, True at real tokens, after checking it; None when
    there is no padding (no mask, or all ones), so that an unpadded batch computes as without.

    ``attention_mask``: a tensor of ``input_ids``' shape ``(b, L)``, any real dtype, holding 1 at
    real tokens and 0 at padding; each row's padding comes first (left padding) and each row
    has at least one real token.
    """
    if attention_mask is None:
        return None
    m = attention_mask
    if not isinstance(m, Tensor) or m.is_complex() or m.shape != input_ids.shape:
        got = f"{tuple(m.shape)} {m.dtype}" if isinstance(m, Tensor) else type(m).__name__
        raise ValueError(
            f"attention_mask must be a tensor of input_ids' shape (batch, L) = "
            f"{tuple(input_ids.shape)}, 1 at real tokens and 0 at padding, got {got}"
        )
    m = m.to(input_ids.device)
    if not ((m == 0) | (m == 1)).all():
        bad = m[(m != 0) & (m != 1)][:3].tolist()
        raise ValueError(f"attention_mask must hold only 0 (padding) and 1 (real), got {bad}")
    real = m.bool()
    empty = (~real.any(1)).nonzero()
    if len(empty):
        raise ValueError(f"attention_mask: row {empty[0, 0].item()} has no real token (all 0)")
    late = (real[:, :-1] & ~real[:, 1:]).any(1).nonzero()  # rows with a 0 after a 1
    if len(late):
        row = late[0, 0].item()
        where = "at its end (right padding)" if not real[row, -1] else "inside it (a hole)"
        raise ValueError(
            f"attention_mask: row {row} has padding (0) after a real token (1), {where}; "
            f"pad on the left only, all 0s before the first 1 (with a tokenizer: "
            f'tokenizer.padding_side = "left")'
        )
    return None if real.all() else real


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

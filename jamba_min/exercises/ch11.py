"""Graders of chapter 11, long context: left padding, and why the Mamba layer zeroes twice."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._common import call, compare_tensors, gen, grader
from .general import key_facts

__all__ = ["check_left_pad", "check_padding_answer"]


def _left_pad(prompts: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), L), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), L, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, L - len(p) :] = p
        mask[i, L - len(p) :] = 1
    return ids, mask


@grader
def check_left_pad(fn: Callable[[list, int], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Grade ``fn(prompts, pad_id) -> (input_ids, attention_mask)`` (chapter 11).

    prompts: a list of 1-D int64 tensors of token ids, of any lengths ≥ 1. Returns two int64
    ``(b, L)`` tensors, L the longest prompt's length: each prompt at the right end of its row,
    ``pad_id`` before it, and the mask 1 at the prompt's tokens and 0 at the padding.
    """
    name = "check_left_pad"
    g = gen(11)
    cases = []
    for label, lengths, pad in [
        ("three prompts of 5, 9 and 12 tokens", [5, 9, 12], 0),
        ("the longest first, pad id 7", [12, 3, 8], 7),
        ("one prompt", [4], 0),
        ("prompts of equal length", [6, 6], 0),
        ("one-token prompts among longer ones", [1, 10, 1], 3),
    ]:
        prompts = [torch.randint(1, 50, (n,), generator=g) for n in lengths]
        got = call(name, label, fn, prompts, pad)
        cases.append((label, got, _left_pad(prompts, pad)))
    for label, got, _ in cases:
        mask = got[1] if isinstance(got, tuple) and len(got) == 2 else None
        if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool:
            raise AssertionError(
                f"{name}: for {label}, return the mask as int64 0s and 1s, as a tokenizer "
                "does, not bool"
            )
    compare_tensors(name, cases, tol=0)


@grader
def check_padding_answer(answer: str) -> None:
    """Grade the explanation of why the Mamba layer zeroes the convolution's output at the
    padding as well as its input (chapter 11)."""
    key_facts(
        "check_padding_answer",
        answer,
        [
            (
                "what the convolution outputs at a padded position even with zero input (its "
                "bias, through the activation)",
                [r"bias", r"b_?\{?conv", r"silu"],
            ),
            (
                "where that would go (into the SSM state h, through the scan's B̄u)",
                [r"state", r"\bh\b", r"scan", r"b̄|bar ?b|δ ?b ?u|delta ?b"],
            ),
            (
                "what it would change (the real tokens' outputs after the padding, unlike the "
                "same prompt alone)",
                [r"real", r"later", r"after", r"alone", r"leak", r"differ"],
            ),
        ],
    )

"""Graders of chapter 9, training a tiny Jamba: the schedule, the loss, the labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._common import call, compare_tensors, gen, grader
from .general import key_facts

__all__ = [
    "check_align_labels",
    "check_first_token_answer",
    "check_lr_schedule",
    "check_token_loss",
]


@grader
def check_lr_schedule(fn: Callable[[int, float, int, float], Any]) -> None:
    """Grade ``fn(steps, lr, warmup, min_lr) -> lrs``: the learning rate of every step at once.

    ``lrs``: ``steps`` numbers (a list or a ``(steps,)`` tensor), entry ``s`` equal to
    :func:`jamba_min.train.lr_at` ``(s, steps, lr, warmup, min_lr)``: a linear warm-up from
    ``lr / warmup`` to ``lr``, then a cosine down to ``min_lr`` at the last step (chapter 9).
    """
    from ..train import lr_at

    name = "check_lr_schedule"
    cases = []
    settings = [
        (100, 1e-3, 10, 1e-4),
        (1, 3e-3, 1, 3e-4),
        (10, 1.0, 0, 0.0),  # no warm-up
        (5, 0.1, 5, 0.01),  # all warm-up
        (7, 0.5, 12, 0.05),  # a warm-up longer than the run
        (50, 2e-2, 1, 2e-2),  # min_lr = lr: constant after the warm-up
        (2, 1e-2, 1, 1e-3),
    ]
    for steps, lr, warmup, min_lr in settings:
        want = torch.tensor([lr_at(s, steps, lr, warmup, min_lr) for s in range(steps)])
        label = f"steps={steps}, lr={lr}, warmup={warmup}, min_lr={min_lr}"
        got = call(name, label, fn, steps, lr, warmup, min_lr)
        try:
            got = torch.as_tensor(got, dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise AssertionError(
                f"{name}: for steps={steps}, expected {steps} numbers, got {type(got).__name__}"
            ) from None
        # relative to lr, so that float32 arithmetic passes and small rates still count
        cases.append((label, got / lr, want.double() / lr))
    compare_tensors(name, cases, tol=1e-6)


@grader
def check_token_loss(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> None:
    """Grade ``fn(logits, labels) -> (loss_sum, count)``: the masked next-token loss (chapter 9).

    logits: ``(b, L, V)``; labels: ``(b, L)``, aligned with the positions, -100 where nothing is
    scored. ``loss_sum`` is the summed cross-entropy over the scored positions and ``count``
    their number, as :func:`jamba_min.train.token_loss` returns them. Cases include every
    position unscored, float64 logits, and logits too large for a naive ``exp``.
    """
    name = "check_token_loss"
    cases = []
    settings = [  # (b, L, V, share of positions scored, logit scale, dtype)
        (1, 1, 2, 1.0, 1.0, torch.float32),
        (2, 5, 7, 0.5, 1.0, torch.float32),
        (3, 16, 256, 0.3, 3.0, torch.float32),
        (2, 4, 5, 0.0, 1.0, torch.float32),
        (2, 9, 11, 0.7, 1.0, torch.float64),
        (1, 6, 8, 1.0, 1e4, torch.float32),
    ]
    for seed, (b, L, V, share, scale, dtype) in enumerate(settings):
        g = gen(seed)
        logits = (torch.randn(b, L, V, generator=g, dtype=torch.float64) * scale).to(dtype)
        labels = torch.randint(0, V, (b, L), generator=g)
        labels[torch.rand(b, L, generator=g) >= share] = -100
        scored = labels != -100
        logp = torch.log_softmax(logits.double(), dim=-1)
        picked = logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
        want = (-(picked * scored).sum(), scored.sum().double())
        label = f"(b, L, V) = {(b, L, V)}, {int(scored.sum())} scored, {dtype}, scale {scale:g}"
        got = call(name, label, fn, logits, labels)
        if isinstance(got, (tuple, list)) and len(got) == 2:
            got = tuple(torch.as_tensor(v).double() for v in got)
        cases.append((label, got, want))
    compare_tensors(name, cases, tol=1e-5)


@grader
def check_align_labels(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Grade ``fn(ids, targets) -> labels``: next-token labels aligned with the positions.

    ids: ``(b, L)`` int64; targets: ``(b, L)`` bool, True where token ``ids[:, t]`` is to be
    predicted (from the tokens before it). labels: ``(b, L)`` int64 with ``labels[:, t] =
    ids[:, t + 1]`` where ``targets[:, t + 1]`` and -100 elsewhere, the last position always -100
    (chapter 9). Checked against :func:`jamba_min.data.text_windows` and
    :func:`jamba_min.data.mqar`, among others.
    """
    from ..data import mqar, text_windows

    name = "check_align_labels"
    cases = []

    def add(label: str, ids: torch.Tensor, targets: torch.Tensor, want: torch.Tensor) -> None:
        cases.append((label, call(name, label, fn, ids, targets), want))

    # text: every byte but the first is a target; the window minus its last byte is the input
    text = "Once upon a time, there was a fox named Ada. Ada lived near the river.\n" * 3
    x, y = text_windows(text, 4, 24, seed=1)
    window = torch.cat([x, y[:, -1:]], dim=1)
    want = torch.cat([y, torch.full((4, 1), -100)], dim=1)
    add(
        "text windows, every byte a target", window, torch.ones_like(window, dtype=torch.bool), want
    )
    # MQAR: the targets are the values right after the queried keys
    x, y = mqar(3, 32, 4, 64, seed=2)
    targets = torch.zeros_like(x, dtype=torch.bool)
    targets[:, 1:] = y[:, :-1] != -100
    add("MQAR, the values after the queries", x, targets, y)
    g = gen(3)
    for b, L in [(1, 1), (2, 2), (3, 17)]:
        ids = torch.randint(0, 50, (b, L), generator=g)
        targets = torch.rand(b, L, generator=g) < 0.5
        want = torch.full((b, L), -100)
        want[:, :-1] = torch.where(targets[:, 1:], ids[:, 1:], -100)
        add(f"random ids and targets, (b, L) = {(b, L)}", ids, targets, want)
    no_targets = torch.zeros(2, 5, dtype=torch.bool)
    ids = torch.arange(10).view(2, 5)
    add("no targets at all", ids, no_targets, torch.full((2, 5), -100))
    compare_tensors(name, cases, tol=0)


@grader
def check_first_token_answer(answer: str) -> None:
    """Grade the explanation of why the first token of a sequence is never a target (chapter 9).

    The key facts: a token is predicted by the position before it (from the tokens before it),
    and no position comes before the first one.
    """
    key_facts(
        "check_first_token_answer",
        answer,
        [
            (
                "where a token's prediction is made (at the position before it, from the "
                "tokens before it)",
                [r"before", r"earlier", r"preced", r"previous", r"prior", r"\bt ?- ?1\b"],
            ),
            (
                "what the first token lacks (no position or token comes before it)",
                [r"\bno\b", r"nothing", r"\bnone\b", r"without", r"empty", r"\bzero\b"],
            ),
        ],
    )

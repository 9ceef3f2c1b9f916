"""Graders of chapter 5, the Mamba layer: the causal convolution, the norms, resuming a state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ._common import call, compare_tensors, gen, grader
from .general import key_facts

__all__ = ["check_causal_conv1d", "check_forward_from_state", "check_norms_answer"]


@grader
def check_causal_conv1d(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Grade ``fn(x, weight, bias) -> y``: Mamba's causal depthwise convolution, no activation.

    x: ``(b, d_inner, L)``; weight: ``(d_inner, d_conv)``; bias: ``(d_inner,)``; y: like x, with
    y[:, c, t] = bias[c] + Σ_i weight[c, i] · x[:, c, t − d_conv + 1 + i] (zeros before the start).
    """
    name = "check_causal_conv1d"
    cases = []
    shapes = [(1, 1, 1, 4), (2, 3, 10, 4), (2, 5, 3, 4), (1, 4, 9, 2)]
    for seed, (b, d_inner, L, d_conv) in enumerate(shapes):
        g = gen(seed)
        x = torch.randn(b, d_inner, L, generator=g, dtype=torch.float64)
        w = torch.randn(d_inner, d_conv, generator=g, dtype=torch.float64)
        bias = torch.randn(d_inner, generator=g, dtype=torch.float64)
        want = F.conv1d(x, w[:, None], bias, padding=d_conv - 1, groups=d_inner)[..., :L]
        label = f"(b, d_inner, L, d_conv) = {(b, d_inner, L, d_conv)}"
        cases.append((label, call(name, label, fn, x, w, bias), want))
    compare_tensors(name, cases)


@grader
def check_norms_answer(answer: str) -> None:
    """Grade the explanation of why Jamba puts RMSNorms on Δ, B and C (chapter 5).

    The key facts: without them a large input makes Δ, B and u all large, so the update Δ B u
    grows like the cube of the input's scale and a large Δ wipes the state; with them B and C
    keep a root mean square of 1 and Δ stays bounded whatever the input's scale; Jamba added them
    because large-scale training showed loss spikes.
    """
    key_facts(
        "check_norms_answer",
        answer,
        [
            (
                "what goes wrong without them (Δ, B and u grow with the input, the update "
                "Δ B u like its cube, and a large Δ wipes the state)",
                [r"cub", r"\^ ?3", r"third power", r"³", r"grow", r"explod", r"blow",
                 r"run(s)? away", r"wipe", r"erase", r"reset"],
            ),
            (
                "what the norms guarantee (B and C at a root mean square of 1, Δ bounded, "
                "whatever the scale of the input)",
                [r"bound", r"\brms\b", r"root mean square", r"unit", r"same (size|scale)",
                 r"independent of", r"whatever", r"regardless", r"no matter"],
            ),
            (
                "why Jamba added them (loss spikes in large-scale training)",
                [r"spike", r"unstab", r"instab", r"stabl", r"stabili", r"diverg"],
            ),
        ],
    )  # fmt: skip


def _small_mixer(hidden_size: int, seed: int):
    from ..config import JambaConfig
    from ..mamba import JambaMambaMixer

    with torch.random.fork_rng():  # the reader's random numbers stay as they were
        torch.manual_seed(seed)
        cfg = JambaConfig(hidden_size=hidden_size, num_attention_heads=8, num_key_value_heads=8)
        m = JambaMambaMixer(cfg).double().eval()
    g = gen(seed)
    with torch.no_grad():  # away from the initial values that hide mistakes (norm weights, D)
        for p in m.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m


@grader
def check_forward_from_state(fn: Callable[..., Any]) -> None:
    """Grade ``fn(m, x, state) -> (out, new_state)``: a Mamba layer over a chunk, from a state.

    m: a :class:`jamba_min.JambaMambaMixer`; x: ``(b, T, d)``, the tokens after those that
    ``state`` (a :class:`jamba_min.MambaState`) summarises; out: ``(b, T, d)``, what ``m.step``
    token by token from ``state`` returns, and new_state the state after the last token of x.
    Float64 layers with perturbed weights; chunks of 1 token, shorter than ``d_conv``, and
    longer; states after a prompt and the empty state (chapter 5).
    """
    from ..mamba import MambaState

    name = "check_forward_from_state"
    cases = []
    settings = [(16, 1, 3, 1), (16, 2, 5, 3), (32, 3, 2, 9), (16, 2, 0, 6), (24, 1, 7, 17)]
    for seed, (d, b, L0, T) in enumerate(settings):
        m = _small_mixer(d, seed)
        x = torch.randn(b, L0 + T, d, generator=gen(100 + seed), dtype=torch.float64)
        with torch.no_grad():
            if L0:
                _, state = m(x[:, :L0], return_state=True)
            else:
                state = m.empty_state(b)
            ys, s = [], state
            for t in range(L0, L0 + T):
                y_t, s = m.step(x[:, t], s)
                ys.append(y_t)
            want = (torch.stack(ys, dim=1), s.conv, s.ssm)
            label = f"d={d}, batch {b}, {T} token{'s' * (T > 1)} after " + (
                f"a prompt of {L0}" if L0 else "the empty state"
            )

            def answer(x, conv, ssm, m=m):
                return fn(m, x, MambaState(conv, ssm))

            got = call(name, label, answer, x[:, L0:], state.conv, state.ssm)
        if not (
            isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[1], MambaState)
        ):
            raise AssertionError(
                f"{name}: for {label}, return (out, new_state) with new_state a MambaState, "
                f"got {type(got).__name__}"
            )
        got = (got[0], got[1].conv, got[1].ssm)
        cases.append((label, got, want))
    compare_tensors(name, cases)

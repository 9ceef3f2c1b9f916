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

import torch

from .accounting import count_params, kv_cache_bytes, mamba_mixer_params, paper_models
from .config import JambaConfig
from .ops import selective_scan

__all__ = [
    "check_active_params",
    "check_align_labels",
    "check_causal_attention",
    "check_causal_conv1d",
    "check_chunked_scan",
    "check_combine",
    "check_cumsum",
    "check_discretize",
    "check_ema",
    "check_kv_cache_bytes",
    "check_linear_recurrence",
    "check_load_balancing_loss",
    "check_lr_schedule",
    "check_mamba_mixer_params",
    "check_repeat_kv",
    "check_route",
    "check_selective_scan",
    "check_ssm_kernel",
    "check_ssm_step",
    "check_token_loss",
]


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


# --------------------------------------------------------------------------- chapters 1-3
def _compare_tensors(name: str, cases: Iterable[tuple[str, Any, Any]], tol: float = 1e-9) -> None:
    n = 0
    for label, got, want in cases:
        got_t = got if isinstance(got, (tuple, list)) else (got,)
        want_t = want if isinstance(want, (tuple, list)) else (want,)
        if len(got_t) != len(want_t):
            raise AssertionError(
                f"{name}: for {label}, expected {len(want_t)} outputs, got {len(got_t)}"
            )
        for i, (g, w) in enumerate(zip(got_t, want_t, strict=True)):
            if not isinstance(g, torch.Tensor) or g.shape != w.shape:
                shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                raise AssertionError(
                    f"{name}: for {label}, output {i} should have shape {tuple(w.shape)}, "
                    f"got {shape}"
                )
            err = (g.double() - w.double()).abs().max().item()
            scale = max(1.0, w.abs().max().item())
            if not err <= tol * scale:
                raise AssertionError(f"{name}: for {label}, output {i} is off by {err:.3g}")
        n += 1
    print(f"✓ {name}: {n} cases agree")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check_discretize(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Any]) -> None:
    """Grade ``fn(A, B, delta) -> (A_bar, B_bar)``: zero-order-hold discretisation (chapter 1).

    A, B: ``(d_inner, N)`` (A diagonal per channel, negative); delta: ``(d_inner,)``. Expected:
    Ā = exp(ΔA) and B̄ = (ΔA)⁻¹(exp(ΔA) − 1)·ΔB, elementwise.
    """
    cases = []
    for seed, (d_inner, N) in enumerate([(1, 1), (3, 4), (8, 16)]):
        g = _gen(seed)
        A = -torch.rand(d_inner, N, generator=g, dtype=torch.float64) * 4 - 0.1
        B = torch.randn(d_inner, N, generator=g, dtype=torch.float64)
        delta = torch.rand(d_inner, generator=g, dtype=torch.float64) + 0.01
        dA = delta[:, None] * A
        want = (torch.exp(dA), (torch.exp(dA) - 1) / dA * delta[:, None] * B)
        cases.append((f"d_inner={d_inner}, N={N}", fn(A, B, delta), want))
    _compare_tensors("check_discretize", cases)


def check_ssm_kernel(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], Any]) -> None:
    """Grade ``fn(A_bar, B_bar, C, L) -> kernel``: the convolution kernel of a diagonal LTI SSM.

    A_bar, B_bar, C: ``(N,)``; kernel: ``(L,)`` with κ̄_i = Σ_j C_j Ā_j^i B̄_j (chapter 1).
    """
    cases = []
    for seed, (n, L) in enumerate([(1, 5), (4, 1), (16, 64)]):
        g = _gen(seed)
        A_bar = torch.rand(n, generator=g, dtype=torch.float64) * 0.98
        B_bar, C = (torch.randn(n, generator=g, dtype=torch.float64) for _ in range(2))
        powers = A_bar[None, :] ** torch.arange(L, dtype=torch.float64)[:, None]
        cases.append((f"n={n}, L={L}", fn(A_bar, B_bar, C, L), powers @ (C * B_bar)))
    _compare_tensors("check_ssm_kernel", cases)


def check_ema(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Grade ``fn(x, alpha) -> y``: y_t = α y_{t-1} + (1 − α) x_t, y_{-1} = 0; x: ``(L,)``."""
    cases = []
    for seed, (L, alpha) in enumerate([(1, 0.5), (10, 0.9), (100, 0.0), (50, 1.0)]):
        x = torch.randn(L, generator=_gen(seed), dtype=torch.float64)
        want, y = torch.empty_like(x), 0.0
        for t in range(L):
            y = alpha * y + (1 - alpha) * x[t].item()
            want[t] = y
        cases.append((f"L={L}, alpha={alpha}", fn(x, alpha), want))
    _compare_tensors("check_ema", cases)


def check_selective_scan(fn: Callable[..., torch.Tensor]) -> None:
    """Grade ``fn(u, delta, A, B, C, D) -> y``: the selective scan, Δ given (chapter 2).

    Shapes as :func:`jamba_min.selective_scan`; compared with its ``"ref"`` backend.
    """
    cases = []
    for seed, (b, d, L, n) in enumerate([(1, 1, 1, 1), (2, 3, 17, 4), (1, 5, 40, 16)]):
        g = _gen(seed)
        u = torch.randn(b, d, L, generator=g, dtype=torch.float64)
        delta = torch.rand(b, d, L, generator=g, dtype=torch.float64) * 0.5
        A = -torch.rand(d, n, generator=g, dtype=torch.float64) * 3
        B, C = (torch.randn(b, n, L, generator=g, dtype=torch.float64) for _ in range(2))
        D = torch.randn(d, generator=g, dtype=torch.float64)
        want = selective_scan(u, delta, A, B, C, D, backend="ref")
        cases.append((f"(b, d, L, n) = {(b, d, L, n)}", fn(u, delta, A, B, C, D), want))
    _compare_tensors("check_selective_scan", cases)


def check_combine(fn: Callable[[Any, Any], Any]) -> None:
    """Grade ``fn((a1, b1), (a2, b2)) -> (a, b)``: the scan operator of h_t = a_t h_{t-1} + b_t.

    It must compose "first step 1, then step 2", and be associative (chapter 3).
    """
    cases = []
    g = _gen(0)
    steps = [
        tuple(torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(2))
        for _ in range(3)
    ]
    (a1, b1), (a2, b2), (a3, b3) = steps
    cases.append(("two steps", fn(steps[0], steps[1]), (a1 * a2, a2 * b1 + b2)))
    left = fn(fn(steps[0], steps[1]), steps[2])
    right = fn(steps[0], fn(steps[1], steps[2]))
    cases.append(("associativity: (s1 s2) s3 vs s1 (s2 s3)", tuple(left), tuple(right)))
    h = b1
    h = a2 * h + b2
    h = a3 * h + b3
    cases.append(("three steps applied to h_0 = 0", left[1], h))
    _compare_tensors("check_combine", cases)


def check_chunked_scan(fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """Grade ``fn(a, x, chunk) -> h``: h_t = a_t h_{t-1} + x_t (h_{-1} = 0) along dim 0.

    a, x: ``(L, …)``; ``chunk`` need not divide L (chapter 3).
    """
    cases = []
    for seed, (L, chunk) in enumerate([(1, 1), (10, 3), (64, 8), (100, 7), (5, 16)]):
        g = _gen(seed)
        a = torch.rand(L, 2, 3, generator=g, dtype=torch.float64)
        x = torch.randn(L, 2, 3, generator=g, dtype=torch.float64)
        want, h = torch.empty_like(x), torch.zeros_like(x[0])
        for t in range(L):
            h = a[t] * h + x[t]
            want[t] = h
        cases.append((f"L={L}, chunk={chunk}", fn(a, x, chunk), want))
    _compare_tensors("check_chunked_scan", cases)


# --------------------------------------------------------------------------- chapter 4
_ROWS_AND_LENGTHS = [(1, 1), (3, 7), (5, 100), (2, 129)]  # irregular on purpose


def check_cumsum(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Grade ``fn(x) -> y``: the cumulative sum along the last axis of ``x`` (rows, L), float32.

    Written as a Triton kernel in chapter 4; any implementation passes if its values are right.
    """
    cases = []
    for seed, (rows, L) in enumerate(_ROWS_AND_LENGTHS):
        x = torch.randn(rows, L, generator=_gen(seed))
        cases.append((f"rows={rows}, L={L}", fn(x.clone()), torch.cumsum(x.double(), -1)))
    _compare_tensors("check_cumsum", cases, tol=1e-5)


def check_linear_recurrence(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Grade ``fn(a, x) -> h``: h_t = a_t h_{t-1} + x_t along the last axis (h_{-1} = 0).

    a, x: ``(rows, L)`` float32 (chapter 4's exponential-moving-average kernel, generalised).
    """
    cases = []
    for seed, (rows, L) in enumerate(_ROWS_AND_LENGTHS):
        g = _gen(seed)
        a, x = torch.rand(rows, L, generator=g), torch.randn(rows, L, generator=g)
        want, h = torch.empty(rows, L, dtype=torch.float64), torch.zeros(rows, dtype=torch.float64)
        for t in range(L):
            h = a[:, t].double() * h + x[:, t].double()
            want[:, t] = h
        cases.append((f"rows={rows}, L={L}", fn(a.clone(), x.clone()), want))
    _compare_tensors("check_linear_recurrence", cases, tol=1e-5)


# --------------------------------------------------------------------------- chapter 5
def check_causal_conv1d(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Grade ``fn(x, weight, bias) -> y``: Mamba's causal depthwise convolution, no activation.

    x: ``(b, d_inner, L)``; weight: ``(d_inner, d_conv)``; bias: ``(d_inner,)``; y: like x, with
    y[:, c, t] = bias[c] + Σ_i weight[c, i] · x[:, c, t − d_conv + 1 + i] (zeros before the start).
    """
    import torch.nn.functional as F

    cases = []
    shapes = [(1, 1, 1, 4), (2, 3, 10, 4), (2, 5, 3, 4), (1, 4, 9, 2)]
    for seed, (b, d_inner, L, d_conv) in enumerate(shapes):
        g = _gen(seed)
        x = torch.randn(b, d_inner, L, generator=g, dtype=torch.float64)
        w = torch.randn(d_inner, d_conv, generator=g, dtype=torch.float64)
        bias = torch.randn(d_inner, generator=g, dtype=torch.float64)
        want = F.conv1d(x, w[:, None], bias, padding=d_conv - 1, groups=d_inner)[..., :L]
        cases.append((f"(b, d_inner, L, d_conv) = {(b, d_inner, L, d_conv)}", fn(x, w, bias), want))
    _compare_tensors("check_causal_conv1d", cases)


def check_ssm_step(fn: Callable[..., Any]) -> None:
    """Grade ``fn(h, u, delta, A, B, C, D) -> (y, h_new)``: one step of the selective scan.

    h: ``(b, d_inner, N)``; u, delta: ``(b, d_inner)`` (Δ after softplus); A: ``(d_inner, N)``;
    B, C: ``(b, N)``; D: ``(d_inner,)``. h_new = exp(ΔA) h + Δ B u; y = C · h_new + D u (no gate).
    """
    cases = []
    for seed, (b, d_inner, N) in enumerate([(1, 1, 1), (2, 3, 4), (3, 8, 16)]):
        g = _gen(seed)
        h = torch.randn(b, d_inner, N, generator=g, dtype=torch.float64)
        u = torch.randn(b, d_inner, generator=g, dtype=torch.float64)
        delta = torch.rand(b, d_inner, generator=g, dtype=torch.float64)
        A = -torch.rand(d_inner, N, generator=g, dtype=torch.float64) * 3
        B, C = (torch.randn(b, N, generator=g, dtype=torch.float64) for _ in range(2))
        D = torch.randn(d_inner, generator=g, dtype=torch.float64)
        h_new = torch.exp(delta[..., None] * A) * h + (delta * u)[..., None] * B[:, None]
        want = ((h_new * C[:, None]).sum(-1) + D * u, h_new)
        cases.append((f"(b, d_inner, N) = {(b, d_inner, N)}", fn(h, u, delta, A, B, C, D), want))
    _compare_tensors("check_ssm_step", cases)


# --------------------------------------------------------------------------- chapters 6-7
def check_repeat_kv(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """Grade ``fn(kv, groups) -> kv_full``: share each key-value head with ``groups`` query heads.

    kv: ``(b, G, T, d_h)`` → ``(b, G·groups, T, d_h)``; query head i uses key-value head
    i // groups (chapter 6).
    """
    cases = []
    for seed, (b, G, T, d_h, groups) in enumerate(
        [(1, 1, 1, 2, 1), (2, 2, 5, 4, 3), (1, 4, 7, 8, 2)]
    ):
        kv = torch.randn(b, G, T, d_h, generator=_gen(seed))
        want = kv.repeat_interleave(groups, dim=1)
        cases.append((f"G={G}, groups={groups}", fn(kv.clone(), groups), want))
    _compare_tensors("check_repeat_kv", cases, tol=0)


def check_causal_attention(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Grade ``fn(q, k, v) -> out``: causal softmax attention, scale d_h^-½, no positions.

    q, k, v: ``(b, H, L, d_h)`` → ``(b, H, L, d_h)``; query t sees keys 0 … t (chapter 6).
    """
    import torch.nn.functional as F

    cases = []
    for seed, (b, H, L, d_h) in enumerate([(1, 1, 1, 4), (2, 3, 9, 8), (1, 2, 33, 16)]):
        g = _gen(seed)
        q, k, v = (torch.randn(b, H, L, d_h, generator=g, dtype=torch.float64) for _ in range(3))
        want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        cases.append((f"(b, H, L, d_h) = {(b, H, L, d_h)}", fn(q, k, v), want))
    _compare_tensors("check_causal_attention", cases)


def check_route(fn: Callable[[torch.Tensor, int], Any]) -> None:
    """Grade ``fn(logits, k) -> (weights, experts)``: Jamba's top-K routing (chapter 7).

    logits: ``(tokens, n)``; softmax over all n experts, then the K largest probabilities, in
    descending order as ``torch.topk`` gives them, **not** renormalised.
    """
    cases = []
    for seed, (tokens, n, k) in enumerate([(1, 2, 1), (10, 4, 2), (100, 16, 2), (7, 5, 5)]):
        logits = torch.randn(tokens, n, generator=_gen(seed), dtype=torch.float64)
        weights, experts = torch.topk(torch.softmax(logits, -1), k, dim=-1)
        got = fn(logits, k)
        if isinstance(got, (tuple, list)) and len(got) == 2:
            got = (got[0], got[1].to(torch.float64) if isinstance(got[1], torch.Tensor) else got[1])
        cases.append((f"tokens={tokens}, n={n}, K={k}", got, (weights, experts.to(torch.float64))))
    _compare_tensors("check_route", cases)


def check_load_balancing_loss(fn: Callable[[list, int, int], torch.Tensor]) -> None:
    """Grade ``fn(router_logits, num_experts, top_k) -> loss``: Switch's n · Σ_i f_i P_i.

    router_logits: a list of ``(tokens, n)`` tensors, one per MoE layer, pooled as transformers
    pools them for Jamba (chapter 7).
    """
    from .moe import load_balancing_loss

    cases = []
    for seed, (layers, tokens, n, k) in enumerate([(1, 8, 4, 1), (3, 50, 6, 2), (2, 100, 16, 2)]):
        g = _gen(seed)
        logits = [torch.randn(tokens, n, generator=g) * 2 for _ in range(layers)]
        want = load_balancing_loss(logits, n, k)
        cases.append((f"{layers} layers, tokens={tokens}, n={n}, K={k}", fn(logits, n, k), want))
    _compare_tensors("check_load_balancing_loss", cases, tol=1e-5)


# --------------------------------------------------------------------------- chapter 9
def check_lr_schedule(fn: Callable[[int, float, int, float], Any]) -> None:
    """Grade ``fn(steps, lr, warmup, min_lr) -> lrs``: the learning rate of every step at once.

    ``lrs``: ``steps`` numbers (a list or a ``(steps,)`` tensor), entry ``s`` equal to
    :func:`jamba_min.train.lr_at` ``(s, steps, lr, warmup, min_lr)``: a linear warm-up from
    ``lr / warmup`` to ``lr``, then a cosine down to ``min_lr`` at the last step (chapter 9).
    """
    from .train import lr_at

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
        got = fn(steps, lr, warmup, min_lr)
        try:
            got = torch.as_tensor(got, dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise AssertionError(
                f"check_lr_schedule: for steps={steps}, expected {steps} numbers, got "
                f"{type(got).__name__}"
            ) from None
        label = f"steps={steps}, lr={lr}, warmup={warmup}, min_lr={min_lr}"
        # relative to lr, so that float32 arithmetic passes and small rates still count
        cases.append((label, got / lr, want.double() / lr))
    _compare_tensors("check_lr_schedule", cases, tol=1e-6)


def check_token_loss(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> None:
    """Grade ``fn(logits, labels) -> (loss_sum, count)``: the masked next-token loss (chapter 9).

    logits: ``(b, L, V)``; labels: ``(b, L)``, aligned with the positions, -100 where nothing is
    scored. ``loss_sum`` is the summed cross-entropy over the scored positions and ``count``
    their number, as :func:`jamba_min.train.token_loss` returns them. Cases include every
    position unscored, float64 logits, and logits too large for a naive ``exp``.
    """
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
        g = _gen(seed)
        logits = (torch.randn(b, L, V, generator=g, dtype=torch.float64) * scale).to(dtype)
        labels = torch.randint(0, V, (b, L), generator=g)
        labels[torch.rand(b, L, generator=g) >= share] = -100
        scored = labels != -100
        logp = torch.log_softmax(logits.double(), dim=-1)
        picked = logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
        want = (-(picked * scored).sum(), scored.sum().double())
        got = fn(logits.clone(), labels.clone())
        if isinstance(got, (tuple, list)) and len(got) == 2:
            got = tuple(torch.as_tensor(v).double() for v in got)
        label = f"(b, L, V) = {(b, L, V)}, {int(scored.sum())} scored, {dtype}, scale {scale:g}"
        cases.append((label, got, want))
    _compare_tensors("check_token_loss", cases, tol=1e-5)


def check_align_labels(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Grade ``fn(ids, targets) -> labels``: next-token labels aligned with the positions.

    ids: ``(b, L)`` int64; targets: ``(b, L)`` bool, True where token ``ids[:, t]`` is to be
    predicted (from the tokens before it). labels: ``(b, L)`` int64 with ``labels[:, t] =
    ids[:, t + 1]`` where ``targets[:, t + 1]`` and -100 elsewhere, the last position always -100
    (chapter 9). Checked against :func:`jamba_min.data.text_windows` and
    :func:`jamba_min.data.mqar`, among others.
    """
    from .data import mqar, text_windows

    cases = []

    def add(label: str, ids: torch.Tensor, targets: torch.Tensor, want: torch.Tensor) -> None:
        got = fn(ids.clone(), targets.clone())
        if isinstance(got, torch.Tensor) and got.dtype.is_floating_point:
            raise AssertionError(f"check_align_labels: for {label}, labels must be integers")
        cases.append((label, got, want))

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
    g = _gen(3)
    for b, L in [(1, 1), (2, 2), (3, 17)]:
        ids = torch.randint(0, 50, (b, L), generator=g)
        targets = torch.rand(b, L, generator=g) < 0.5
        want = torch.full((b, L), -100)
        want[:, :-1] = torch.where(targets[:, 1:], ids[:, 1:], -100)
        add(f"random ids and targets, (b, L) = {(b, L)}", ids, targets, want)
    no_targets = torch.zeros(2, 5, dtype=torch.bool)
    ids = torch.arange(10).view(2, 5)
    add("no targets at all", ids, no_targets, torch.full((2, 5), -100))
    _compare_tensors("check_align_labels", cases, tol=0)

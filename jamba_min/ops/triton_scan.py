"""The selective scan as Triton kernels, forward and backward (chapter 4).

One program handles one batch row and a block of ``BLOCK_D`` channels of ``d_inner``. Its state
``(BLOCK_D, d_state)`` never leaves the chip: the program walks through time one step at a
time, reading a column of u, Δ, B, C and writing a column of y per step. What goes to memory is
the inputs once, the output once, and the state at the start of every chunk of ``CHUNK`` steps,
which is all the backward needs.

The backward kernel walks the chunks in reverse. For each chunk it recomputes the states from
the chunk's saved entering state into a small scratch buffer, then steps backwards through the
chunk with the adjoint recurrence. Written with the message μ_t = Ā_t λ_t that a step passes to
the step before it, λ_t = ∂ℒ/∂h_t + μ_{t+1} and every quantity is read at its own time step:
no reverse scan primitive (``associative_scan(reverse=True)`` is buggy in some Triton versions)
and no shifted loads. Gradients that sum over channels (B, C) are written per channel block and
summed by the host, which keeps the kernel free of atomics and deterministic.

A second forward kernel, ``scan_fwd_chunked_kernel``, is the chunk-parallel design that
mamba_ssm's CUDA kernel follows with a block-wide scan: a program loads ``CHUNK`` steps of its
channels at once, scans them in parallel with ``tl.associative_scan`` over the pairs
(Ā_t, B̄u_t) of h_t = Ā_t h_{t-1} + B̄u_t, and carries the chunk's last state into the next
chunk. It is forward only (``selective_scan_triton_chunked``), a rung of chapter 4 and a
candidate for the GPU benchmark, not a backend of ``jamba_min.selective_scan``.

Inputs are computed in float32. Without a GPU the kernels run in Triton's interpreter
(``jamba_min._backend`` sets ``TRITON_INTERPRET=1`` before triton is imported).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .common import first_order_only

__all__ = [
    "chunked_tile_sizes",
    "scan_bwd_kernel",
    "scan_fwd_chunked_kernel",
    "scan_fwd_kernel",
    "selective_scan_triton",
    "selective_scan_triton_chunked",
    "tile_sizes",
]


@triton.jit
def _softplus(x):
    # log(1 + e^x) as torch computes it (x itself above 20), accurate for very negative x too
    e = tl.exp(-tl.abs(x))
    log1p_e = tl.where(e < 1e-4, e - 0.5 * e * e, tl.log(1.0 + e))
    return tl.where(x > 20.0, x, tl.maximum(x, 0.0) + log1p_e)


@triton.jit
def scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr,  # inputs
    D_ptr, z_ptr, bias_ptr,  # optional inputs (flags below)
    out_ptr, states_ptr, last_ptr,  # outputs
    L, d_inner, d_state,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):  # fmt: skip
    """u, delta, z, out: (b, d_inner, L); A: (d_inner, d_state);
    B, C: (b, d_state, L); D, bias: (d_inner,);
    states: (b, chunks, d_inner, d_state), the state entering each chunk;
    last: (b, d_inner, d_state). All contiguous float32.
    Grid: (b, cdiv(d_inner, BLOCK_D)); one program walks time step by step."""
    # int64: offsets can pass 2³¹
    pid_b, pid_d = tl.program_id(0).to(tl.int64), tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d, mask_n = offs_d < d_inner, offs_n < d_state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    # offsets of a (BLOCK_D, BLOCK_N) tile of a (d_inner, d_state) tensor
    dn = offs_d[:, None] * d_state + offs_n[None, :]
    A = tl.load(A_ptr + dn, mask=mask_dn, other=0.0)  # (BLOCK_D, BLOCK_N)
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    Dv = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0)
    col_d = pid_b * d_inner * L + offs_d * L  # offsets of (b, d_inner, t = 0)
    col_n = pid_b * d_state * L + offs_n * L  # offsets of (b, N, t = 0)
    chunks = tl.cdiv(L, CHUNK)
    states = states_ptr + pid_b * chunks * d_inner * d_state + dn
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for c in range(chunks):
        if SAVE_STATES:  # only when a backward will need them
            tl.store(states + c * d_inner * d_state, h, mask=mask_dn)
        for t in range(c * CHUNK, tl.minimum(c * CHUNK + CHUNK, L)):
            dt = tl.load(delta_ptr + col_d + t, mask=mask_d, other=0.0)
            dt += bias
            if SOFTPLUS:
                dt = _softplus(dt)
            u = tl.load(u_ptr + col_d + t, mask=mask_d, other=0.0)
            Bt = tl.load(B_ptr + col_n + t, mask=mask_n, other=0.0)
            Ct = tl.load(C_ptr + col_n + t, mask=mask_n, other=0.0)
            a = tl.exp(dt[:, None] * A)  # Ā_t = exp(Δ_t A)
            # h_t = Ā_t h_{t-1} + Δ_t u_t B_t
            h = a * h + (dt * u)[:, None] * Bt[None, :]
            y = tl.sum(h * Ct[None, :], axis=1)  # y_t = C_t · h_t
            if HAS_D:
                y += Dv * u
            if HAS_Z:
                z = tl.load(z_ptr + col_d + t, mask=mask_d, other=0.0)
                y = y * z * tl.sigmoid(z)
            tl.store(out_ptr + col_d + t, y, mask=mask_d)
    tl.store(last_ptr + pid_b * d_inner * d_state + dn, h, mask=mask_dn)


@triton.jit
def _combine(a1, b1, a2, b2):
    # step (a1, b1), then step (a2, b2): h -> a2 (a1 h + b1) + b2
    return a1 * a2, a2 * b1 + b2


@triton.jit
def scan_fwd_chunked_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr,  # inputs
    D_ptr, z_ptr, bias_ptr,  # optional inputs (flags below)
    out_ptr, last_ptr,  # outputs
    L, d_inner, d_state,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):  # fmt: skip
    """Shapes as scan_fwd_kernel (no states). Grid: (b, cdiv(d_inner,
    BLOCK_D)); one program walks time chunk by chunk, CHUNK steps at once.

    In a chunk: load (BLOCK_D, CHUNK) tiles of u, Δ, z and (BLOCK_N, CHUNK)
    tiles of B, C; scan the steps (Ā_t, Δ_t u_t B_t) of all its
    (BLOCK_D, BLOCK_N) states at once with tl.associative_scan; store a
    (BLOCK_D, CHUNK) tile of y; carry the last state into the next chunk."""
    # int64: offsets can pass 2³¹
    pid_b, pid_d = tl.program_id(0).to(tl.int64), tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_t = tl.arange(0, CHUNK)
    mask_d, mask_n = offs_d < d_inner, offs_n < d_state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    dn = offs_d[:, None] * d_state + offs_n[None, :]
    A = tl.load(A_ptr + dn, mask=mask_dn, other=0.0)  # (BLOCK_D, BLOCK_N)
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    Dv = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0)
    col_d = pid_b * d_inner * L + offs_d * L  # offsets of (b, d_inner, t = 0)
    col_n = pid_b * d_state * L + offs_n * L  # offsets of (b, N, t = 0)
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # entering the chunk
    for start in range(0, L, CHUNK):
        t = start + offs_t  # (CHUNK,): this chunk's time steps
        mask_d_t = mask_d[:, None] & (t < L)[None, :]  # (BLOCK_D, CHUNK)
        mask_n_t = mask_n[:, None] & (t < L)[None, :]  # (BLOCK_N, CHUNK)
        tile_d = col_d[:, None] + t[None, :]  # offsets of a (BLOCK_D, CHUNK)
        tile_n = col_n[:, None] + t[None, :]  # and of a (BLOCK_N, CHUNK) tile
        dt = tl.load(delta_ptr + tile_d, mask=mask_d_t, other=0.0)
        dt += bias[:, None]
        if SOFTPLUS:
            dt = _softplus(dt)
        dt = tl.where(mask_d_t, dt, 0.0)  # past L: Ā = 1, B̄u = 0, no change
        u = tl.load(u_ptr + tile_d, mask=mask_d_t, other=0.0)
        Bc = tl.load(B_ptr + tile_n, mask=mask_n_t, other=0.0)
        Cc = tl.load(C_ptr + tile_n, mask=mask_n_t, other=0.0)
        # every step of the chunk, (BLOCK_D, BLOCK_N, CHUNK) each:
        a = tl.exp(dt[:, None, :] * A[:, :, None])  # Ā_t = exp(Δ_t A)
        bu = (dt * u)[:, None, :] * Bc[None, :, :]  # B̄u_t = Δ_t u_t B_t
        # prefixes along time (axis 2): h_t = a_pre[t] h + bu_pre[t], with h
        # the state entering the chunk
        a_pre, bu_pre = tl.associative_scan((a, bu), 2, _combine)
        hs = a_pre * h[:, :, None] + bu_pre  # h_t, every t of the chunk
        y = tl.sum(hs * Cc[None, :, :], axis=1)  # (BLOCK_D, CHUNK)
        if HAS_D:
            y += Dv[:, None] * u
        if HAS_Z:
            z = tl.load(z_ptr + tile_d, mask=mask_d_t, other=0.0)
            y = y * z * tl.sigmoid(z)
        tl.store(out_ptr + tile_d, y, mask=mask_d_t)
        # the chunk's last column: steps past L changed nothing
        last_t = offs_t[None, None, :] == CHUNK - 1
        h = tl.sum(tl.where(last_t, hs, 0.0), axis=2)
    tl.store(last_ptr + pid_b * d_inner * d_state + dn, h, mask=mask_dn)


@triton.jit
def scan_bwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, states_ptr,  # forward
    g_out_ptr, g_last_ptr,  # incoming gradients
    g_u_ptr, g_delta_ptr, g_z_ptr, g_A_ptr, g_B_ptr, g_C_ptr, g_D_ptr,  # outgoing
    scratch_ptr,
    L, d_inner, d_state,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_G_LAST: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):  # fmt: skip
    """Shapes as the forward; g_u, g_delta (w.r.t. the raw Δ), g_z: (b, d_inner, L); g_A:
    (b, d_inner, d_state) and g_D: (b, d_inner), per batch row; g_B, g_C: (b, channel blocks,
    d_state, L), per channel block; scratch: (b, channel blocks, CHUNK, BLOCK_D, BLOCK_N)."""
    pid_b, pid_d = (
        tl.program_id(0).to(tl.int64),
        tl.program_id(1),
    )  # int64: offsets can pass 2³¹
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d, mask_n = offs_d < d_inner, offs_n < d_state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    dn = offs_d[:, None] * d_state + offs_n[None, :]
    A = tl.load(A_ptr + dn, mask=mask_dn, other=0.0)
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    Dv = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0)
    col_d = pid_b * d_inner * L + offs_d * L
    col_n = pid_b * d_state * L + offs_n * L
    col_part = (pid_b * tl.num_programs(1) + pid_d) * d_state * L + offs_n * L
    program = pid_b * tl.num_programs(1) + pid_d
    tile = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + offs_n[None, :]  # a (BLOCK_D, BLOCK_N) tile
    scratch = scratch_ptr + program * CHUNK * BLOCK_D * BLOCK_N + tile
    chunks = tl.cdiv(L, CHUNK)

    # μ: the message Ā λ that the step after the current one passes back; at the end, ∂ℒ/∂h_L
    mu = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    if HAS_G_LAST:
        mu = tl.load(g_last_ptr + pid_b * d_inner * d_state + dn, mask=mask_dn, other=0.0)
    g_A = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    g_D = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for i in range(chunks):
        c = chunks - 1 - i
        start, stop = c * CHUNK, tl.minimum(c * CHUNK + CHUNK, L)
        # 1. recompute this chunk's states h_t from the state that entered it
        h = tl.load(
            states_ptr + (pid_b * chunks + c) * d_inner * d_state + dn, mask=mask_dn, other=0.0
        )
        for t in range(start, stop):
            dt = tl.load(delta_ptr + col_d + t, mask=mask_d, other=0.0) + bias
            if SOFTPLUS:
                dt = _softplus(dt)
            u = tl.load(u_ptr + col_d + t, mask=mask_d, other=0.0)
            Bt = tl.load(B_ptr + col_n + t, mask=mask_n, other=0.0)
            h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bt[None, :]
            tl.store(scratch + (t - start) * BLOCK_D * BLOCK_N, h)
        tl.debug_barrier()
        # 2. walk back through the chunk
        for j in range(stop - start):
            t = stop - 1 - j
            raw = tl.load(delta_ptr + col_d + t, mask=mask_d, other=0.0) + bias
            dt = raw
            if SOFTPLUS:
                dt = _softplus(raw)
            u = tl.load(u_ptr + col_d + t, mask=mask_d, other=0.0)
            Bt = tl.load(B_ptr + col_n + t, mask=mask_n, other=0.0)
            Ct = tl.load(C_ptr + col_n + t, mask=mask_n, other=0.0)
            g_out = tl.load(g_out_ptr + col_d + t, mask=mask_d, other=0.0)
            h = tl.load(scratch + (t - start) * BLOCK_D * BLOCK_N)
            a = tl.exp(dt[:, None] * A)
            Bu = (dt * u)[:, None] * Bt[None, :]

            # through the gate and the skip: out = (C·h + D u) · silu(z)
            g_y = g_out
            if HAS_Z:
                z = tl.load(z_ptr + col_d + t, mask=mask_d, other=0.0)
                sig = tl.sigmoid(z)
                y = tl.sum(h * Ct[None, :], axis=1) + Dv * u
                g_z = g_out * y * sig * (1.0 + z * (1.0 - sig))
                tl.store(g_z_ptr + col_d + t, g_z, mask=mask_d)
                g_y = g_out * z * sig
            g_D += g_y * u

            lam = g_y[:, None] * Ct[None, :] + mu  # λ_t = dℒ/dh_t, all paths
            mu = a * lam  # what reaches h_{t-1} through Ā_t
            # Ā_t receives λ_t h_{t-1}, so ∂ℒ/∂(Δ_t A) is
            # η = λ_t Ā_t h_{t-1} = λ_t (h_t − B̄u_t)
            eta = lam * (h - Bu)
            g_A += eta * dt[:, None]
            lam_B = tl.sum(lam * Bt[None, :], axis=1)  # Σ_j λ B
            g_dt = tl.sum(eta * A, axis=1) + lam_B * u
            if SOFTPLUS:
                g_dt = g_dt * tl.sigmoid(raw)
            tl.store(g_delta_ptr + col_d + t, g_dt, mask=mask_d)
            g_u = lam_B * dt + g_y * Dv
            tl.store(g_u_ptr + col_d + t, g_u, mask=mask_d)
            # per channel block: the host sums the blocks
            g_B = tl.sum(lam * (dt * u)[:, None], axis=0)
            tl.store(g_B_ptr + col_part + t, g_B, mask=mask_n)
            g_C = tl.sum(h * g_y[:, None], axis=0)
            tl.store(g_C_ptr + col_part + t, g_C, mask=mask_n)
        tl.debug_barrier()
    tl.store(g_A_ptr + pid_b * d_inner * d_state + dn, g_A, mask=mask_dn)
    if HAS_D:
        tl.store(g_D_ptr + pid_b * d_inner + offs_d, g_D, mask=mask_d)


def tile_sizes(
    d_inner: int, d_state: int, block_d: int | None = None, chunk: int | None = None
) -> tuple[int, int, int]:
    """``BLOCK_D`` channels per program, ``BLOCK_N`` ≥ d_state (a power of two, as Triton's
    tiles must be) and ``CHUNK`` steps between saved states, unless given."""
    BLOCK_N = triton.next_power_of_2(d_state)
    BLOCK_D = block_d or min(16, triton.next_power_of_2(d_inner))
    return BLOCK_D, BLOCK_N, chunk or 64


CHUNKED_TILE = 2048
"""Numbers in one ``(BLOCK_D, BLOCK_N, CHUNK)`` tile of the chunk-parallel kernel, by default:
16 per thread of a 4-warp program, for each of the few such tiles it holds at once. A guess
that keeps the tiles in registers, not a tuned value."""


def chunked_tile_sizes(
    d_inner: int, d_state: int, block_d: int | None = None, chunk: int | None = None
) -> tuple[int, int, int]:
    """``BLOCK_D``, ``BLOCK_N``, ``CHUNK`` of :func:`scan_fwd_chunked_kernel`, unless given.

    ``CHUNK`` (32 by default) is a tile size here, so a power of two; ``BLOCK_D`` fills a tile
    of :data:`CHUNKED_TILE` numbers, ``BLOCK_D · BLOCK_N · CHUNK``, with at least one channel.
    """
    BLOCK_N = triton.next_power_of_2(d_state)
    CHUNK = chunk or 32
    fill = max(1, CHUNKED_TILE // (BLOCK_N * CHUNK))
    return block_d or min(fill, triton.next_power_of_2(d_inner)), BLOCK_N, CHUNK


def _check_tile_args(block_d: int | None, chunk: int | None, chunk_pow2: bool) -> None:
    for name, value in (("block_d", block_d), ("chunk", chunk)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if block_d is not None and block_d & (block_d - 1):
        raise ValueError(f"block_d must be a power of two (a Triton tile size), got {block_d}")
    if chunk_pow2 and chunk is not None and chunk & (chunk - 1):
        raise ValueError(
            f"chunk must be a power of two (a Triton tile size in this kernel), got {chunk}"
        )


def _float32(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.to(torch.float32).contiguous()


def _refuse_float64(u: Tensor, backend: str) -> None:
    if u.dtype == torch.float64:
        raise ValueError(
            f"{backend} computes in float32 and has no float64 path; for float64 inputs "
            "use backend='parallel' or 'ref' (backend='auto' does)"
        )


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, block_d, chunk):
        b, d_inner, L = u.shape
        N = A.shape[1]
        BLOCK_D, BLOCK_N, CHUNK = tile_sizes(d_inner, N, block_d, chunk)
        out = torch.empty_like(u)
        save = any(ctx.needs_input_grad)
        states = u.new_empty(b, triton.cdiv(L, CHUNK) if save else 0, d_inner, N)
        last = u.new_empty(b, d_inner, N)
        scan_fwd_kernel[(b, triton.cdiv(d_inner, BLOCK_D))](
            u, delta, A, B, C,
            D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u,
            out, states, last, L, d_inner, N,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=softplus, SAVE_STATES=save, BLOCK_D=BLOCK_D, BLOCK_N=BLOCK_N, CHUNK=CHUNK,
        )  # fmt: skip
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
        ctx.config = (softplus, BLOCK_D, BLOCK_N, CHUNK)
        return out, last

    @staticmethod
    @first_order_only(
        "selective_scan(backend='triton')", "backend='ref' can be differentiated twice"
    )
    def backward(ctx, g_out, g_last):
        u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
        softplus, BLOCK_D, BLOCK_N, CHUNK = ctx.config
        b, d_inner, L = u.shape
        N = A.shape[1]
        d_blocks = triton.cdiv(d_inner, BLOCK_D)
        g_u, g_delta = torch.empty_like(u), torch.empty_like(u)
        g_z = torch.empty_like(u) if z is not None else None
        g_A = u.new_empty(b, d_inner, N)
        g_D = u.new_empty(b, d_inner) if D is not None else None
        g_B = u.new_empty(b, d_blocks, N, L)
        g_C = u.new_empty(b, d_blocks, N, L)
        scratch = u.new_empty(b, d_blocks, CHUNK, BLOCK_D, BLOCK_N)
        scan_bwd_kernel[(b, d_blocks)](
            u, delta, A, B, C,
            D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, states,
            g_out.contiguous() if g_out is not None else torch.zeros_like(u),
            g_last.contiguous() if g_last is not None else u,
            g_u, g_delta, g_z if g_z is not None else u, g_A, g_B, g_C,
            g_D if g_D is not None else u, scratch,
            L, d_inner, N,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=softplus, HAS_G_LAST=g_last is not None,
            BLOCK_D=BLOCK_D, BLOCK_N=BLOCK_N, CHUNK=CHUNK,
        )  # fmt: skip
        return (
            g_u,
            g_delta,
            g_A.sum(0),
            g_B.sum(1),
            g_C.sum(1),
            g_D.sum(0) if g_D is not None else None,
            g_z,
            g_delta.sum((0, 2)) if delta_bias is not None else None,
            None,
            None,
            None,
        )


def selective_scan_triton(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    block_d: int | None = None,
    chunk: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan with the Triton kernels; shapes as :func:`jamba_min.selective_scan`.

    Computes in float32 and returns ``y`` in ``u``'s dtype (and the last state in float32);
    float64 inputs are refused (the kernels have no float64 path: use ``backend="parallel"``,
    which ``backend="auto"`` picks for them). ``block_d`` (channels per program, a power of two)
    and ``chunk`` (steps between saved states) override the defaults, for tests and tuning.
    """
    _refuse_float64(u, "backend='triton'")
    _check_tile_args(block_d, chunk, chunk_pow2=False)
    f32 = _float32
    y, last = _TritonScan.apply(
        f32(u), f32(delta), f32(A), f32(B), f32(C), f32(D), f32(z), f32(delta_bias),
        delta_softplus, block_d, chunk,
    )  # fmt: skip
    y = y.to(u.dtype)
    return (y, last) if return_last_state else y


def selective_scan_triton_chunked(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    block_d: int | None = None,
    chunk: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan's forward with :func:`scan_fwd_chunked_kernel`, the chunk-parallel
    kernel; shapes and results as :func:`selective_scan_triton`.

    Forward only: it has no backward, so it refuses inputs that would need gradients (call it
    under ``torch.no_grad()``, or use :func:`selective_scan_triton` to train). ``block_d`` and
    ``chunk`` (steps scanned at once; both powers of two) override
    :func:`chunked_tile_sizes`.
    """
    _refuse_float64(u, "the chunk-parallel Triton kernel")
    _check_tile_args(block_d, chunk, chunk_pow2=True)
    given = (u, delta, A, B, C, D, z, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in given):
        raise ValueError(
            "the chunk-parallel Triton kernel is forward only and an input requires grad: "
            "call it under torch.no_grad(), or use selective_scan_triton to train"
        )
    b, d_inner, L = u.shape
    N = A.shape[1]
    BLOCK_D, BLOCK_N, CHUNK = chunked_tile_sizes(d_inner, N, block_d, chunk)
    u32, delta, A, B, C, D, z, delta_bias = map(_float32, given)
    out = torch.empty_like(u32)
    last = u32.new_empty(b, d_inner, N)
    scan_fwd_chunked_kernel[(b, triton.cdiv(d_inner, BLOCK_D))](
        u32, delta, A, B, C,
        D if D is not None else u32, z if z is not None else u32,
        delta_bias if delta_bias is not None else u32,
        out, last, L, d_inner, N,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        SOFTPLUS=delta_softplus, BLOCK_D=BLOCK_D, BLOCK_N=BLOCK_N, CHUNK=CHUNK,
    )  # fmt: skip
    y = out.to(u.dtype)
    return (y, last) if return_last_state else y

"""The chunked selective scan: pure PyTorch, no Python loop over single time steps (chapter 3).

``selective_scan_parallel`` computes what :func:`jamba_min.selective_scan` specifies (mamba_ssm's
semantics, channel-first shapes) in a custom ``autograd.Function`` with a hand-written backward:

* time is processed in **blocks** that fit in the CPU's cache, in a time-major layout
  ``(b, block_len, N, d_inner)``: each step's state is contiguous, and products that broadcast Δ
  or B run along the long d_inner axis, which a CPU's vector units handle better than d_state's 16;
* inside a block, **chunks** of τ ≈ √block_len steps are scanned side by side from a zero state,
  the true state is carried from chunk to chunk with the product of their Ā (exp(A·ΣΔ)), and each
  chunk is rescanned from its true entering state, in place (:func:`_scan_block`);
* the backward keeps only the state entering each chunk (and y before the gate), recomputes each
  block's states from them, and runs the adjoint recurrence with the same three passes
  (:func:`_scan_block_backward`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import compute_dtype, first_order_only

__all__ = ["selective_scan_parallel"]


def selective_scan_parallel(
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
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan as a blocked, chunked scan; shapes as :func:`selective_scan` (no checks).

    Everything, bias, softplus, ``D`` and the gate included, runs in :class:`_ChunkedScan`, one
    block of time at a time, with a backward written by hand.
    """
    dtype = compute_dtype(u)
    args = [None if t is None else t.to(dtype) for t in (u, delta, A, B, C, D, z, delta_bias)]
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args)
    y, h_last = _ChunkedScan.apply(*args, delta_softplus, grad)
    y = y.to(u.dtype)
    return (y, h_last) if return_last_state else y


# Elements of one (batch, block, d_inner, d_state) tensor: 2**21 floats = 8 MiB in float32, so
# that the handful of block-sized tensors that a block needs stay in the CPU's cache.
BLOCK_ELEMENTS = 2**21


def plan(b: int, d_inner: int, N: int, L: int) -> tuple[int, int, int]:
    """Chunk length τ, chunks per block and number of blocks for a sequence of L steps.

    A block holds about ``BLOCK_ELEMENTS`` state elements. Scanning a block of
    block_len = τ·chunks steps takes about 2τ + chunks sequential operations, few for
    τ ≈ √block_len. The sizes are rounded so that the blocks cover L with as little padding as
    possible.
    """
    steps = max(1, min(L, BLOCK_ELEMENTS // (b * d_inner * N)))
    blocks = -(-L // steps)
    per_block = -(-L // blocks)
    chunk = max(1, math.isqrt(per_block))
    chunks = -(-per_block // chunk)
    return chunk, chunks, -(-L // (chunk * chunks))


def _time_major(x: Tensor) -> Tensor:
    """A channel-first ``(b, c, L)`` tensor as a contiguous time-major ``(b, L, c)`` one.

    No copy when ``x`` is already a transposed view of a time-major tensor, as the Mamba layer
    passes it.
    """
    return x.transpose(1, 2).contiguous()


class _Block:
    """One block of time of the time-major ``(b, L, ·)`` inputs, as ``(b, block_len, ·)`` tensors.

    A full block is a view; a short last block is zero-padded to block_len steps. Steps past the
    end of the sequence get Δ = 0, so Ā = 1 and B̄u = 0: the state passes through them unchanged.
    """

    def __init__(self, i, block_len, dt, u, B, C, z):
        L = u.shape[1]
        self.sl = slice(i * block_len, min((i + 1) * block_len, L))
        self.valid, self.block_len = self.sl.stop - self.sl.start, block_len
        self.dt, self.u = self.stage(dt), self.stage(u)
        self.du = self.dt * self.u
        self.B, self.C = self.stage(B), self.stage(C)
        self.z = self.stage(z) if z is not None else None

    def stage(self, x: Tensor) -> Tensor:
        """The block's rows of a time-major ``(b, L, c)`` tensor, ``(b, block_len, c)``; read-only.

        Full blocks are views; the last block is copied, zero-padded."""
        if self.valid == self.block_len:
            return x[:, self.sl]
        out = x.new_zeros(x.shape[0], self.block_len, x.shape[2])
        out[:, : self.valid] = x[:, self.sl]
        return out

    def put(self, target: Tensor, x: Tensor) -> None:
        """Write a block's result ``(b, block_len, c)`` into time-major ``(b, L, c)`` ``target``."""
        target[:, self.sl] = x[:, : self.valid]


class _ChunkedScan(torch.autograd.Function):
    """The whole selective scan, one block of time at a time; the backward recomputes per block.

    Inside a block the layout is time-major, ``(b, block_len, N, d_inner)``, so that each step's
    state (stored transposed, ``(N, d_inner)``) is contiguous and the per-step outputs are batched
    matrix products. Δ's bias and softplus are applied once, to the whole sequence. For the
    backward it keeps Δ after them (the size of u), the state entering each chunk (one
    ``(b, N, d_inner)`` state per τ steps) and y before the gate (the size of u, which spares the
    backward a pass over the states); nothing at all when no gradient is needed (``grad=False``).
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, grad):
        b, d_inner, L = u.shape
        N = A.shape[1]
        chunk, chunks, blocks = plan(b, d_inner, N, L)
        block_len = chunk * chunks
        dt = _time_major(delta)  # Δ, time-major, after the bias and the softplus
        if delta_bias is not None:
            dt = dt + delta_bias
        if softplus:
            dt = F.softplus(dt)
        u_t, B_t, C_t = _time_major(u), _time_major(B), _time_major(C)
        z_t = _time_major(z) if z is not None else None
        out = u.new_empty(b, L, d_inner)
        y_pre = u.new_empty(b, L, d_inner) if z is not None and grad else None  # y before the gate
        At = A.t().contiguous()  # the state's layout is (N, d_inner): see _ChunkedScan
        h = u.new_zeros(b, N, d_inner)
        bufs = u.new_empty(2, b, block_len, N, d_inner)
        entering = []  # the state entering each chunk of each block
        for i in range(blocks):
            blk = _Block(i, block_len, dt, u_t, B_t, C_t, z_t)
            a, hs = _discretize(blk.dt, blk.du, At, blk.B, *bufs)
            h, h_in = _scan_block(a, hs, h, blk.dt, At, chunk)
            entering.append(h_in)
            y = torch.matmul(blk.C[:, :, None, :], hs).squeeze(2)  # y_t = C_t · h_t
            if D is not None:
                y += D * blk.u
            if z is not None:
                if grad:
                    blk.put(y_pre, y)
                y *= F.silu(blk.z)
            blk.put(out, y)
        if grad:  # `grad`: whether a backward can follow (False under no_grad: keep nothing)
            ctx.save_for_backward(u, dt, A, B, C, D, z, torch.stack(entering), y_pre)
        ctx.config = (softplus, delta_bias is not None, chunk, chunks)
        return out.transpose(1, 2), h.transpose(1, 2).contiguous()

    @staticmethod
    @first_order_only(
        "selective_scan(backend='parallel')", "backend='ref' can be differentiated twice"
    )
    def backward(ctx, g_out: Tensor, g_h_last: Tensor | None):
        u, dt, A, B, C, D, z, entering, y_pre = ctx.saved_tensors
        softplus, bias, chunk, chunks = ctx.config
        block_len, blocks = chunk * chunks, entering.shape[0]
        u_t, B_t, C_t, g_out = _time_major(u), _time_major(B), _time_major(C), _time_major(g_out)
        z_t = _time_major(z) if z is not None else None
        g_u, g_delta = torch.empty_like(u_t), torch.empty_like(u_t)  # all time-major
        g_B, g_C = torch.empty_like(B_t), torch.empty_like(C_t)
        g_z = torch.empty_like(z_t) if z is not None else None
        At = A.t().contiguous()
        g_At = torch.zeros_like(At)
        g_D = torch.zeros_like(D) if D is not None else None
        bufs = u.new_empty(3, u.shape[0], block_len, *entering.shape[-2:])
        # ρ: the adjoint flowing into a block's last step from the steps after the block
        rho = g_h_last.transpose(1, 2) if g_h_last is not None else torch.zeros_like(bufs[0, :, 0])
        for i in reversed(range(blocks)):
            blk = _Block(i, block_len, dt, u_t, B_t, C_t, z_t)
            g_y = blk.stage(g_out)
            a, hs = _discretize(blk.dt, blk.du, At, blk.B, bufs[0], bufs[1])
            _scan_block(a, hs, None, blk.dt, At, chunk, entering[i])  # hs[:, t] = h_t again
            # through the gate and the skip: out = (C·h + D u) · silu(z)
            if z is not None:
                y = blk.stage(y_pre)
                sig = torch.sigmoid(blk.z)
                blk.put(g_z, g_y * y * sig * (1 + blk.z * (1 - sig)))
                g_y = g_y * (blk.z * sig)
            blk.put(g_C, torch.matmul(hs, g_y[..., None]).squeeze(-1))  # Σ over d_inner of h g_y
            lam = torch.mul(blk.C[..., None], g_y[:, :, None, :], out=bufs[2])  # ∂ℒ/∂h_t ...
            rho = _scan_block_backward(a, lam, rho, blk.dt, At, chunk)  # ... then λ_t in place
            # B̄u_t = Δu_t B_t receives λ_t: B through Δu, and Δu through B
            blk.put(g_B, torch.matmul(lam, blk.du[..., None]).squeeze(-1))
            g_du = torch.matmul(blk.B[:, :, None, :], lam).squeeze(2)  # Σ_j B λ
            # Ā_t = exp(Δ_t A) receives λ_t ⊙ h_{t-1}; η = λ_t ⊙ h_{t-1} ⊙ Ā_t is ∂ℒ/∂(Δ_t A)
            eta = a.mul_(lam)
            eta[:, 1:].mul_(hs[:, :-1])
            eta[:, 0].mul_(entering[i][:, 0])
            g_At += torch.mul(eta, blk.dt[:, :, None, :], out=lam).sum((0, 1))
            g_dt = eta.mul_(At).sum(2).add_(g_du * blk.u)
            if softplus:  # softplus'(x) = sigmoid(x) = 1 − exp(−softplus(x))
                g_dt *= torch.expm1(-blk.dt).neg_()
            blk.put(g_delta, g_dt)
            g_u_blk = g_du * blk.dt
            if D is not None:
                g_D += (g_y * blk.u).sum((0, 1))
                g_u_blk += g_y * D
            blk.put(g_u, g_u_blk)
        g_bias = g_delta.sum((0, 1)) if bias else None
        # back to the caller's channel-first shapes, as views of the time-major gradients
        g_u, g_delta, g_B, g_C = (g.transpose(1, 2) for g in (g_u, g_delta, g_B, g_C))
        g_z = g_z.transpose(1, 2) if z is not None else None
        return g_u, g_delta, g_At.t(), g_B, g_C, g_D, g_z, g_bias, None, None


def _discretize(
    dt: Tensor, du: Tensor, At: Tensor, B: Tensor, a: Tensor, x: Tensor
) -> tuple[Tensor, Tensor]:
    """Ā = exp(Δ A) and B̄u = Δu·B for one block, written into ``a`` and ``x``.

    a, x: ``(b, block_len, N, d_inner)``; At is Aᵀ, ``(N, d_inner)``; dt, du:
    ``(b, block_len, d_inner)``; B: ``(b, block_len, N)``.

    The buffers are reused from block to block: fresh multi-megabyte tensors would cost a page
    fault per 4 KiB on first touch, which on a CPU takes longer than the arithmetic.
    """
    torch.mul(dt[:, :, None, :], At, out=a).exp_()
    torch.mul(B[..., None], du[:, :, None, :], out=x)
    return a, x


def _scan_block(
    a: Tensor,
    x: Tensor,
    h0: Tensor | None,
    dt: Tensor,
    At: Tensor,
    chunk: int,
    h_in: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Scan one block in place: on return ``x[:, t]`` holds h_t.

    a, x: ``(b, block_len, N, d_inner)`` with block_len = chunk·chunks; h0: ``(b, N, d_inner)``,
    the state before the block.
    Three passes, none of them a loop over the block's block_len single steps:
    1. scan every chunk from a zero state, all chunks side by side (τ steps of chunk-wide ops);
    2. carry the true state across chunks (one step per chunk): a chunk multiplies the state
       entering it by the product of its Ā, which is exp(A·ΣΔ), and adds its local final state;
    3. rescan every chunk from its true entering state, in place (τ steps again).
    Given the entering states ``h_in`` ``(b, chunks, N, d_inner)`` of a previous call, only pass 3
    runs. Returns the block's last state and ``h_in``.
    """
    b, block_len, N, d_inner = x.shape
    chunks = block_len // chunk
    a_t = a.view(b, chunks, chunk, N, d_inner).unbind(2)  # a_t[t]: step t of every chunk
    x_t = x.view(b, chunks, chunk, N, d_inner).unbind(2)
    if h_in is None and chunks == 1:
        h_in = h0[:, None]
    elif h_in is None:
        local = x_t[0].clone()  # each chunk's state from a zero start, updated in place
        for t in range(1, chunk):
            torch.addcmul(x_t[t], a_t[t], local, out=local)
        decay = torch.exp(
            dt.view(b, chunks, chunk, d_inner).sum(2)[:, :, None, :] * At
        )  # Π Ā of a chunk
        h_in = torch.empty_like(local)  # the true state entering each chunk
        h_in[:, 0] = h0
        for i in range(1, chunks):
            torch.addcmul(local[:, i - 1], decay[:, i - 1], h_in[:, i - 1], out=h_in[:, i])
    x_t[0].addcmul_(a_t[0], h_in)
    for t in range(1, chunk):
        x_t[t].addcmul_(a_t[t], x_t[t - 1])
    return x_t[chunk - 1][:, -1].clone(), h_in


def _scan_block_backward(
    a: Tensor, g: Tensor, rho: Tensor, dt: Tensor, At: Tensor, chunk: int
) -> Tensor:
    """The adjoint scan of one block, in place: on return ``g[:, t]`` holds λ_t.

    λ_t = g_t + Ā_{t+1} λ_{t+1}, where the steps after the block contribute ρ = Ā λ of the step
    that follows it. The same three passes as :func:`_scan_block`, backwards in time. Returns the
    ρ that this block hands to the block before it: Ā ⊙ λ of its first step.
    """
    b, block_len, N, d_inner = g.shape
    chunks = block_len // chunk
    a_t = a.view(b, chunks, chunk, N, d_inner).unbind(2)
    g_t = g.view(b, chunks, chunk, N, d_inner).unbind(2)
    if chunks == 1:  # one chunk: a plain reverse scan
        g_t[chunk - 1].add_(rho[:, None])
        for t in range(chunk - 2, -1, -1):
            g_t[t].addcmul_(a_t[t + 1], g_t[t + 1])
        return a_t[0][:, 0] * g_t[0][:, 0]
    local = g_t[chunk - 1].clone()
    for t in range(chunk - 2, -1, -1):
        torch.addcmul(g_t[t], a_t[t + 1], local, out=local)
    # a chunk's first λ responds to what enters at its end through Ā_1 ⋯ Ā_{τ-1} of the chunk
    decay = torch.exp(dt.view(b, chunks, chunk, d_inner)[:, :, 1:].sum(2)[:, :, None, :] * At)
    rho_in = torch.empty_like(local)  # what flows into each chunk's last step from the next
    rho_in[:, -1] = rho
    for i in range(chunks - 1, 0, -1):
        lam_first = torch.addcmul(local[:, i], decay[:, i], rho_in[:, i])
        torch.mul(a_t[0][:, i], lam_first, out=rho_in[:, i - 1])
    g_t[chunk - 1].add_(rho_in)
    for t in range(chunk - 2, -1, -1):
        g_t[t].addcmul_(a_t[t + 1], g_t[t + 1])
    return a_t[0][:, 0] * g_t[0][:, 0]

"""The Mamba layer as Jamba uses it, with recurrent decoding (chapter 5).

Shapes: ``b`` batch, ``L`` tokens, ``d`` = ``hidden_size``, ``d_inner`` = ``mamba_expand · d``,
``n`` = ``d_state``, ``R`` = ``dt_rank``, ``K`` = ``d_conv``.

    x (b, L, d) ─ in_proj ─┬─ u (b, d_inner, L) ─ causal depthwise conv1d ─ act ─┐
                           └─ z (b, d_inner, L) (the gate)                       │
        x_proj(u) → Δ (R), B (n), C (n); RMSNorm on each (Jamba's addition)      │
        Δ ← dt_proj(Δ) (d_inner)                                                 │
        y = selective_scan(u, Δ, A = −exp(A_log), B, C, D, z, Δ-bias, softplus) ─┘
    out_proj(y) → (b, L, d)

Parameter names and shapes are those of transformers' ``JambaMambaMixer`` (``in_proj``,
``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``, ``dt_layernorm``,
``b_layernorm``, ``c_layernorm``), so checkpoints map one to one.

Decoding keeps a :class:`MambaState` per layer: the last ``d_conv`` inputs of the convolution and
the SSM state ``h``. :meth:`JambaMambaMixer.step` advances it by one token in O(1), whatever the
length of the context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._autograd import first_order_only
from .config import JambaConfig
from .norm import RMSNorm
from .scan import check_backend, selective_scan

__all__ = ["ACTIVATIONS", "JambaMambaMixer", "MambaState", "causal_conv1d"]

#: The activations ``hidden_act`` can name (transformers' ACT2FN entries that Jamba uses).
ACTIVATIONS = {
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


def _hi(t: Tensor) -> Tensor:
    """The SSM runs in float32, or in float64 for a float64 model."""
    return t if t.dtype == torch.float64 else t.float()


class _CausalConv(torch.autograd.Function):
    """Depthwise causal convolution in the time-major layout, with a hand-written backward.

    u: ``(b, L, c)`` (any strides), weight ``(c, K)``, bias ``(c,)`` or None →
    y ``(b, L, c)`` with y_t = bias + Σ_k weight[:, k] ⊙ u_{t-K+1+k} (u_t = 0 before the start).
    Equal to ``F.conv1d(u.mT, weight[:, None], bias, padding=K-1, groups=c)[..., :L].mT``, but K
    multiply-adds over contiguous rows, forward and backward, beat oneDNN's depthwise kernel on
    a CPU and leave every tensor time-major, as x_proj and the scan want them.
    """

    @staticmethod
    def forward(ctx, u: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        K, L = weight.shape[1], u.shape[1]
        # (K, c): w[k] multiplies the input k - K + 1 steps back; contiguous, because a strided
        # w[k] makes each multiply-add ~3x slower
        w = weight.t().contiguous()
        u_pad = F.pad(u, (0, 0, K - 1, 0))  # (b, L + K - 1, c), zeros before the start
        y = u_pad[:, K - 1 :] * w[K - 1]
        for k in range(K - 1):
            y.addcmul_(u_pad[:, k : k + L], w[k])
        if bias is not None:
            y += bias
        ctx.save_for_backward(u_pad, w)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @first_order_only("causal_conv1d")
    def backward(ctx, g: Tensor):
        u_pad, w = ctx.saved_tensors  # w: (K, c), as in the forward
        K, L = w.shape[0], g.shape[1]
        g_u = g_w = g_bias = None
        if ctx.needs_input_grad[0]:
            g_pad = F.pad(g, (0, 0, 0, K - 1))  # (b, L + K - 1, c), zeros after the end
            g_u = g * w[K - 1]  # u_t reaches y_{t + K - 1 - k} through w[k]
            for k in range(K - 1):
                g_u.addcmul_(g_pad[:, K - 1 - k : K - 1 - k + L], w[k])
        if ctx.needs_input_grad[1]:
            g_w = torch.stack([(g * u_pad[:, k : k + L]).sum((0, 1)) for k in range(K)], dim=1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            g_bias = g.sum((0, 1))
        return g_u, g_w, g_bias


def causal_conv1d(u: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Depthwise causal convolution, time-major: ``(b, L, c)`` → ``(b, L, c)``.

    ``weight`` ``(c, K)`` (``conv1d.weight[:, 0]``), ``bias`` ``(c,)``; computed in float32 for
    half-precision inputs (float64 stays float64), returned in ``u``'s dtype.
    """
    hi = [None if t is None else _hi(t) for t in (u, weight, bias)]
    return _CausalConv.apply(*hi).to(u.dtype)


@dataclass
class MambaState:
    """What a Mamba layer remembers between tokens; its size does not depend on the context.

    conv: ``(b, d_inner, d_conv)``, the last ``d_conv`` inputs of the convolution (oldest first).
    ssm: ``(b, d_inner, d_state)``, the state h of the selective scan, in float32 (float64 for a
    float64 model).
    """

    conv: Tensor
    ssm: Tensor


class JambaMambaMixer(nn.Module):
    """Jamba's Mamba mixer; mirrors transformers' ``JambaMambaMixer``.

    Differs in initialisation only: Δ's bias is set so that softplus(bias) starts log-uniform in
    [0.001, 0.1] and ``dt_proj.weight`` uniform in ±R^-½, as in Mamba (transformers leaves the
    bias at 0, so every Δ starts at softplus(0) ≈ 0.69). ``scan_backend`` picks the
    :func:`~jamba_min.selective_scan` backend. Padding masks are not supported.
    """

    def __init__(
        self, config: JambaConfig, layer_idx: int | None = None, scan_backend: str = "auto"
    ):
        super().__init__()
        check_backend(scan_backend, "scan_backend")
        self.config, self.layer_idx, self.scan_backend = config, layer_idx, scan_backend
        d, di = config.hidden_size, config.mamba_d_inner
        n, R, K = config.mamba_d_state, config.mamba_dt_rank, config.mamba_d_conv
        self.d_inner, self.d_state, self.dt_rank, self.d_conv = di, n, R, K
        self.act = ACTIVATIONS[config.hidden_act]

        self.in_proj = nn.Linear(d, 2 * di, bias=config.mamba_proj_bias)
        self.conv1d = nn.Conv1d(di, di, K, groups=di, padding=K - 1, bias=config.mamba_conv_bias)
        self.x_proj = nn.Linear(di, R + 2 * n, bias=False)
        self.dt_proj = nn.Linear(R, di, bias=True)
        self.A_log = nn.Parameter(
            torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(di, 1)
        )
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d, bias=config.mamba_proj_bias)
        self.dt_layernorm = RMSNorm(R, eps=config.rms_norm_eps)
        self.b_layernorm = RMSNorm(n, eps=config.rms_norm_eps)
        self.c_layernorm = RMSNorm(n, eps=config.rms_norm_eps)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, dt_min: float = 1e-3, dt_max: float = 0.1) -> None:
        """Mamba's initialisation (A from 1..d_state in log space, D = 1, Δ in [dt_min, dt_max])."""
        std = self.config.initializer_range
        for linear in (self.in_proj, self.x_proj, self.out_proj):
            nn.init.normal_(linear.weight, std=std)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)
        self.conv1d.reset_parameters()
        nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)
        dt = torch.exp(torch.empty(self.d_inner).uniform_(math.log(dt_min), math.log(dt_max)))
        dt = dt.clamp(min=1e-4)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        self.A_log.copy_(torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32)))
        self.D.fill_(1.0)

    # ------------------------------------------------------------------ pieces
    def _ssm_params(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Δ (before bias and softplus), B, C from the conv output u ``(..., d_inner)``.

        Returns Δ ``(..., d_inner)`` and B, C ``(..., d_state)``: ``(b, L, ·)`` for a sequence,
        ``(b, ·)`` for one token. The bias of ``dt_proj`` is left to the scan (or the step).
        """
        dt, B, C = torch.split(self.x_proj(u), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt, B, C = self.dt_layernorm(dt), self.b_layernorm(B), self.c_layernorm(C)
        return F.linear(dt, self.dt_proj.weight), B, C

    def _check(self, x: Tensor, what: str, dims: int) -> None:
        d = self.config.hidden_size
        if not isinstance(x, Tensor) or x.dim() != dims or x.shape[-1] != d:
            shape = "(batch, L, hidden_size)" if dims == 3 else "(batch, hidden_size)"
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"{what}: hidden_states must have shape {shape} with hidden_size = {d}, got {got}"
            )

    # ------------------------------------------------------------------ full sequence / prefill
    def forward(
        self, hidden_states: Tensor, return_state: bool = False
    ) -> Tensor | tuple[Tensor, MambaState]:
        """The layer over a whole sequence: ``(b, L, d)`` → ``(b, L, d)``.

        With ``return_state=True`` also returns the :class:`MambaState` after the last token (a
        prefill), from which :meth:`step` continues.
        """
        self._check(hidden_states, "JambaMambaMixer", 3)
        u, z = self.in_proj(hidden_states).chunk(2, dim=-1)  # (b, L, d_inner) each
        conv_in = u
        # causal: output t sees inputs t-K+1 … t (nn.Conv1d with K-1 padding, cut to L steps)
        u = self.act(causal_conv1d(u, self.conv1d.weight[:, 0], self.conv1d.bias))
        dt, B, C = self._ssm_params(u)
        A = -torch.exp(_hi(self.A_log))
        # the scan's layout is channel-first, (b, d_inner, L): transposed views, no copies
        y = selective_scan(
            u.transpose(1, 2), dt.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2),
            D=_hi(self.D), z=z.transpose(1, 2), delta_bias=_hi(self.dt_proj.bias),
            delta_softplus=True, return_last_state=return_state, backend=self.scan_backend,
        )  # fmt: skip
        if not return_state:
            return self.out_proj(y.transpose(1, 2).to(hidden_states.dtype))
        y, h = y
        tail = conv_in[:, -self.d_conv :].transpose(1, 2)  # the last ≤ d_conv inputs
        conv = F.pad(tail, (self.d_conv - tail.shape[2], 0))  # (b, d_inner, d_conv)
        return self.out_proj(y.transpose(1, 2).to(hidden_states.dtype)), MambaState(conv, h)

    # ------------------------------------------------------------------ one token
    def empty_state(self, batch: int) -> MambaState:
        """The state before any token: zeros, conv window in the weights' dtype, h in float32."""
        w = self.conv1d.weight
        conv = w.new_zeros(batch, self.d_inner, self.d_conv)
        return MambaState(conv, _hi(w.new_zeros(batch, self.d_inner, self.d_state)))

    def step(self, hidden_states: Tensor, state: MambaState) -> tuple[Tensor, MambaState]:
        """One token: ``(b, d)`` and the state after the previous token → ``(b, d)``, new state.

        The convolution slides its window by one; the scan takes one step of
        h ← exp(ΔA) h + Δ B u, y = C·h + D u, y ← y · silu(z). The state is not modified in place.
        """
        self._check(hidden_states, "JambaMambaMixer.step", 2)
        b = hidden_states.shape[0]
        want = {"conv": (b, self.d_inner, self.d_conv), "ssm": (b, self.d_inner, self.d_state)}
        for name, shape in want.items():
            got = getattr(state, name, None)
            if not isinstance(got, Tensor) or tuple(got.shape) != shape:
                got = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
                raise ValueError(
                    f"JambaMambaMixer.step: state.{name} must have shape {shape}, got {got}"
                )
        u, z = self.in_proj(hidden_states).chunk(2, dim=-1)  # (b, d_inner) each
        window = torch.cat([state.conv[..., 1:], u[..., None]], dim=-1)  # (b, d_inner, d_conv)
        u = torch.linalg.vecdot(window, self.conv1d.weight[:, 0])  # the conv's last output
        if self.conv1d.bias is not None:
            u = u + self.conv1d.bias
        u = self.act(u)
        dt, B, C = self._ssm_params(u)
        dt = F.softplus(_hi(dt) + _hi(self.dt_proj.bias))  # (b, d_inner)
        B, C = _hi(B), _hi(C)  # (b, d_state)
        A = -torch.exp(_hi(self.A_log))
        uf = _hi(u)
        # h ← exp(ΔA) ⊙ h + (Δu) Bᵀ, then y = C·h + D u: one fused op each where torch has one
        decayed = torch.exp(dt[..., None] * A) * state.ssm  # Ā ⊙ h          (b, d_inner, d_state)
        h = torch.addcmul(decayed, (dt * uf)[..., None], B[:, None])  # + B̄u
        y = torch.addcmul(torch.bmm(h, C[..., None])[..., 0], _hi(self.D), uf)
        y = y * F.silu(_hi(z))
        return self.out_proj(y.to(hidden_states.dtype)), MambaState(window, h)

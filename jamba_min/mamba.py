"""The Mamba layer as Jamba uses it, with recurrent decoding (chapter 5).

Shapes: ``b`` batch, ``L`` tokens, ``d`` = ``hidden_size``, ``d_inner`` = ``mamba_expand · d``,
``N`` = ``d_state``, ``R`` = ``dt_rank``, ``d_conv`` the convolution's width.

    x (b, L, d) ─ in_proj ─┬─ u (b, L, d_inner) ─ causal depthwise conv1d ─ act ─┐
                           └─ z (b, L, d_inner) (the gate)                       │
        x_proj(u) → Δ (R), B (N), C (N); RMSNorm on each (Jamba's addition)      │
        Δ ← dt_proj(Δ) (d_inner)                                                 │
        y = selective_scan(u, Δ, A = −exp(A_log), B, C, D, z, Δ-bias, softplus) ─┘
    out_proj(y) → (b, L, d)

Parameter names and shapes are those of transformers' ``JambaMambaMixer`` (``in_proj``,
``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``, ``dt_layernorm``,
``b_layernorm``, ``c_layernorm``), so checkpoints map one to one.

A left-padded batch passes ``attention_mask`` ``(b, L)``, True at real tokens: the layer zeroes
the convolution's input and output at the padding, so that the conv window and the SSM state
``h`` reach each row's first real token exactly as they start a sequence (zeros).

Decoding keeps a :class:`MambaState` per layer: the last ``d_conv`` inputs of the convolution and
the SSM state ``h``. :meth:`JambaMambaMixer.step` advances it by one token in O(1), whatever the
length of the context.

Each step with a fast version is one call to :mod:`jamba_min.ops`: ``causal_conv1d``,
``selective_scan`` (and, for one token, ``causal_conv1d_update`` and ``selective_state_update``);
the SSM computes in float32 (float64 for a float64 model), ``ops.to_compute``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .config import ACTIVATIONS, JambaConfig, check_hidden_states
from .norm import RMSNorm
from .ops import (
    causal_conv1d,
    causal_conv1d_update,
    check_backend,
    selective_scan,
    selective_state_update,
    to_compute,
)

__all__ = ["JambaMambaMixer", "MambaState"]


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
    :func:`~jamba_min.selective_scan` backend.
    """

    def __init__(
        self, config: JambaConfig, layer_idx: int | None = None, scan_backend: str = "auto"
    ):
        super().__init__()
        check_backend(scan_backend, "scan_backend")
        self.config, self.layer_idx, self.scan_backend = config, layer_idx, scan_backend
        d, di = config.hidden_size, config.mamba_d_inner
        N, R, width = config.mamba_d_state, config.mamba_dt_rank, config.mamba_d_conv
        self.d_inner, self.d_state, self.dt_rank, self.d_conv = di, N, R, width
        self.act = ACTIVATIONS[config.hidden_act]

        self.in_proj = nn.Linear(d, 2 * di, bias=config.mamba_proj_bias)
        self.conv1d = nn.Conv1d(
            di, di, width, groups=di, padding=width - 1, bias=config.mamba_conv_bias
        )
        self.x_proj = nn.Linear(di, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, di, bias=True)
        self.A_log = nn.Parameter(
            torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(di, 1)
        )
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d, bias=config.mamba_proj_bias)
        self.dt_layernorm = RMSNorm(R, eps=config.rms_norm_eps)
        self.b_layernorm = RMSNorm(N, eps=config.rms_norm_eps)
        self.c_layernorm = RMSNorm(N, eps=config.rms_norm_eps)
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

    # ------------------------------------------------------------------ full sequence / prefill
    def forward(
        self,
        hidden_states: Tensor,
        return_state: bool = False,
        attention_mask: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, MambaState]:
        """The layer over a whole sequence: ``(b, L, d)`` → ``(b, L, d)``.

        With ``return_state=True`` also returns the :class:`MambaState` after the last token (a
        prefill), from which :meth:`step` continues. ``attention_mask`` ``(b, L)`` bool, True at
        real tokens, left padding only (the model checks it): the padding leaves no trace in the
        state or in the real tokens' outputs; its own outputs are meaningless.
        """
        x = hidden_states
        check_hidden_states(x, self.config.hidden_size, "JambaMambaMixer")
        if attention_mask is not None and (
            attention_mask.dtype != torch.bool or attention_mask.shape != x.shape[:2]
        ):
            raise ValueError(
                f"JambaMambaMixer: attention_mask must be a bool tensor of shape (batch, L) = "
                f"{tuple(x.shape[:2])}, got {tuple(attention_mask.shape)} {attention_mask.dtype}"
            )
        real = None if attention_mask is None else attention_mask[..., None]  # (b, L, 1)
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (b, L, d_inner) each
        if real is not None:  # the conv sees zeros at the padding, as before a sequence's start
            u = torch.where(real, u, 0)
        conv_in = u
        # causal: output t sees inputs t - d_conv + 1 … t
        u = self.act(causal_conv1d(u, self.conv1d.weight[:, 0], self.conv1d.bias))
        if real is not None:  # its output there is act(bias) ≠ 0: zero it, so that Δ B u = 0
            u = torch.where(real, u, 0)  # (and B = 0) and h stays 0 until the first real token
        dt, B, C = self._ssm_params(u)  # (b, L, d_inner), (b, L, N), (b, L, N)
        A = -torch.exp(to_compute(self.A_log))  # (d_inner, N), negative: every state decays
        # the scan's layout is channel-first, as in mamba_ssm: views, no copies
        u_c, dt_c, B_c, C_c, z_c = (rearrange(t, "b L c -> b c L") for t in (u, dt, B, C, z))
        y = selective_scan(
            u_c, dt_c, A, B_c, C_c, D=to_compute(self.D), z=z_c,
            delta_bias=to_compute(self.dt_proj.bias), delta_softplus=True,
            return_last_state=return_state, backend=self.scan_backend,
        )  # fmt: skip
        y, h = y if return_state else (y, None)
        out = self.out_proj(rearrange(y, "b d_inner L -> b L d_inner").to(x.dtype))
        if not return_state:
            return out
        tail = rearrange(conv_in[:, -self.d_conv :], "b L d_inner -> b d_inner L")
        conv = F.pad(tail, (self.d_conv - tail.shape[2], 0))  # the last d_conv inputs, 0 before
        return out, MambaState(conv, h)

    # ------------------------------------------------------------------ one token
    def empty_state(self, batch: int) -> MambaState:
        """The state before any token: zeros, conv window in the weights' dtype, h in float32."""
        w = self.conv1d.weight
        conv = w.new_zeros(batch, self.d_inner, self.d_conv)
        return MambaState(conv, to_compute(w.new_zeros(batch, self.d_inner, self.d_state)))

    def step(self, hidden_states: Tensor, state: MambaState) -> tuple[Tensor, MambaState]:
        """One token: ``(b, d)`` and the state after the previous token → ``(b, d)``, new state.

        The convolution slides its window by one; the scan takes one step of
        h ← exp(ΔA) h + Δ B u, y = C·h + D u, y ← y · silu(z). The state is not modified in place.
        """
        check_hidden_states(
            hidden_states, self.config.hidden_size, "JambaMambaMixer.step", one_token=True
        )
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
        u = self.act(causal_conv1d_update(window, self.conv1d.weight[:, 0], self.conv1d.bias))
        dt, B, C = self._ssm_params(u)  # (b, d_inner), (b, N), (b, N)
        A = -torch.exp(to_compute(self.A_log))
        # h ← exp(ΔA) ⊙ h + Δ B u,  y = C·h + D u,  y ← y · silu(z)
        y, h = selective_state_update(
            state.ssm, to_compute(u), dt, A, B, C, D=to_compute(self.D), z=z,
            delta_bias=to_compute(self.dt_proj.bias), delta_softplus=True,
        )  # fmt: skip
        return self.out_proj(y.to(hidden_states.dtype)), MambaState(window, h)

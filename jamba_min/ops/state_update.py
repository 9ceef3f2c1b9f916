"""One step of the selective scan for one token, from a given state (chapter 5): decoding.

Mirrors mamba_ssm's ``selective_state_update`` (``mamba_ssm/ops/triton/selective_state_update.py``),
except that it returns the new state instead of updating it in place: a decoding step that fails
part-way must leave the cache as it was.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import cast

__all__ = ["selective_state_update", "selective_state_update_ref"]


def selective_state_update(
    h: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> tuple[Tensor, Tensor]:
    """One step of the scan: the state ``h`` ``(b, d_inner, d_state)`` after the previous token
    and one token's u, Δ, z ``(b, d_inner)``, B, C ``(b, d_state)`` → y ``(b, d_inner)`` and the
    new state. ``h`` is not modified. Computes in ``h``'s dtype (the compute dtype).

    The same arithmetic as :func:`selective_state_update_ref`, with fused PyTorch ops (one
    ``addcmul`` for the update, one ``bmm`` for the readout): a decoding step is hundreds of
    small ops, and each one saved shows.
    """
    dtype = h.dtype
    dt = cast(delta, dtype)
    dt = dt + cast(delta_bias, dtype) if delta_bias is not None else dt
    dt = F.softplus(dt) if delta_softplus else dt
    u_, B_, C_ = cast(u, dtype), cast(B, dtype), cast(C, dtype)
    decayed = torch.exp(dt[..., None] * cast(A, dtype)) * h  # Ā ⊙ h
    h = torch.addcmul(decayed, (dt * u_)[..., None], B_[:, None])  # + (Δu) Bᵀ = B̄u
    y = torch.bmm(h, C_[..., None])[..., 0]  # C · h
    if D is not None:
        y = torch.addcmul(y, cast(D, dtype), u_)  # + D u
    if z is not None:
        y = y * F.silu(cast(z, dtype))
    return y, h


def selective_state_update_ref(
    h: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> tuple[Tensor, Tensor]:
    """:func:`selective_state_update` written as the equations of chapter 2."""
    dtype = h.dtype
    dt = delta.to(dtype) + (delta_bias.to(dtype) if delta_bias is not None else 0)
    if delta_softplus:
        dt = F.softplus(dt)
    A_bar = torch.exp(dt[..., None] * A.to(dtype))  # Ā = exp(Δ A)         (b, d_inner, N)
    Bu_bar = (dt * u.to(dtype))[..., None] * B.to(dtype)[:, None]  # B̄u = Δ B u
    h = A_bar * h + Bu_bar  # h ← Ā ⊙ h + B̄u
    y = (h * C.to(dtype)[:, None]).sum(-1)  # y = C · h
    if D is not None:
        y = y + D.to(dtype) * u.to(dtype)
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y, h

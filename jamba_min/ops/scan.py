"""The selective scan (S6) of Mamba: the reference loop and a fast chunked scan (chapters 2-3).

Semantics and layout are those of mamba_ssm's ``selective_scan_fn`` (channel-first):

    Δ ← Δ + delta_bias;  Δ ← softplus(Δ) if delta_softplus
    Ā_t = exp(Δ_t A)                      (b, d_inner, L, d_state)
    B̄u_t = Δ_t B_t u_t                    (Euler-style B̄, as Mamba uses in practice)
    h_t = Ā_t ⊙ h_{t-1} + B̄u_t,  h_0 = 0
    y_t = C_t · h_t + D u_t,  y ← y · silu(z)

Three ways to compute it, selected by ``backend``:

* ``"ref"``: a plain loop over time that reads like the equations (chapter 2). Autograd
  differentiates it; iterating over ``unbind()`` slices keeps its backward linear in L.
* ``"parallel"``: a chunked scan in pure PyTorch with a hand-written backward (chapter 3,
  ``jamba_min.ops.chunked_scan``). Time is processed in blocks that fit in cache; inside a block,
  chunks are scanned side by side and the state is carried from chunk to chunk and from block to
  block. The backward recomputes each block from its saved starting state instead of storing
  every state, so memory stays at a few blocks whatever the sequence length.
* ``"triton"``: Triton kernels, forward and backward (chapter 4, ``jamba_min.ops.triton_scan``);
  on a machine without a GPU they run in Triton's interpreter: exact, but slow.
* ``"auto"``: ``"triton"`` for CUDA tensors (but float64), ``"parallel"`` otherwise.

All backends compute in float32, float16/bfloat16 results cast back to the input dtype; float64
inputs compute in float64 with ``"ref"`` and ``"parallel"``, and ``"triton"`` refuses them. The
returned last state stays in the compute dtype, as in mamba_ssm.

:func:`jamba_min.ops.selective_state_update` is one step of the same recurrence for one token,
from a given state: what decoding runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum
from torch import Tensor

from .chunked_scan import selective_scan_parallel
from .common import compute_dtype

__all__ = [
    "BACKENDS",
    "check_backend",
    "random_scan_inputs",
    "selective_scan",
    "selective_scan_parallel",
    "selective_scan_ref",
]

BACKENDS = ("ref", "parallel", "triton", "auto")
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# --------------------------------------------------------------------------- the dispatcher
def selective_scan(
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
    backend: str = "auto",
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan, with mamba_ssm's ``selective_scan_fn`` signature and semantics.

    Args:
        u: input, ``(batch, d_inner, L)``.
        delta: step sizes Δ before bias and softplus, ``(batch, d_inner, L)``.
        A: state matrix (diagonal per channel), ``(d_inner, d_state)``.
        B: input-dependent input matrix, ``(batch, d_state, L)``.
        C: input-dependent output matrix, ``(batch, d_state, L)``.
        D: skip connection, ``(d_inner,)``, optional.
        z: gate, ``(batch, d_inner, L)``, optional; the output is multiplied by ``silu(z)``.
        delta_bias: added to Δ, ``(d_inner,)``, optional.
        delta_softplus: apply softplus to Δ (after the bias).
        return_last_state: also return the final state ``h_L``.
        backend: ``"ref"``, ``"parallel"``, ``"triton"`` or ``"auto"``.

    Returns:
        ``y`` of shape ``(batch, d_inner, L)`` in ``u``'s dtype, and with
        ``return_last_state=True`` also ``h_L`` of shape ``(batch, d_inner, d_state)`` in the
        compute dtype (float32, or float64 for float64 inputs).
    """
    check_backend(backend)
    _check_inputs(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if backend == "auto":  # the Triton kernels compute in float32: float64 stays in PyTorch
        backend = "triton" if u.is_cuda and u.dtype != torch.float64 else "parallel"
    if backend == "triton":
        fn = _triton_backend()
    else:
        fn = selective_scan_ref if backend == "ref" else selective_scan_parallel
    return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def check_backend(backend: str, name: str = "backend") -> None:
    """Raise ``ValueError`` unless ``backend`` is one of :data:`BACKENDS`."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        valid = ", ".join(map(repr, BACKENDS))
        raise ValueError(f"{name} must be one of {valid}; got {backend!r}")


def _triton_backend():
    try:
        from .triton_scan import selective_scan_triton
    except ImportError as err:  # triton has no wheels for macOS or Windows
        raise RuntimeError(
            f"backend='triton' needs the triton package ({err}); install it "
            "(`pip install triton`, Linux only) or use backend='parallel'"
        ) from err
    return selective_scan_triton


# --------------------------------------------------------------------------- validation
_LAYOUT = {
    "u": "(batch, d_inner, L)",
    "delta": "(batch, d_inner, L)",
    "A": "(d_inner, d_state)",
    "B": "(batch, d_state, L)",
    "C": "(batch, d_state, L)",
    "D": "(d_inner,)",
    "z": "(batch, d_inner, L)",
    "delta_bias": "(d_inner,)",
}


def _check_inputs(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state) -> None:
    """Raise ``ValueError`` naming the first argument of the wrong type, shape, dtype or device."""
    if not isinstance(u, Tensor) or u.dim() != 3 or 0 in u.shape:
        got = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
        raise ValueError(
            f"u must be a tensor of shape {_LAYOUT['u']} with every size at least 1, got {got}"
        )
    b, d_inner, L = u.shape
    if not isinstance(A, Tensor) or A.dim() != 2 or A.shape[0] != d_inner:
        got = tuple(A.shape) if isinstance(A, Tensor) else type(A).__name__
        raise ValueError(f"A must have shape {_LAYOUT['A']} = ({d_inner}, d_state), got {got}")
    N = A.shape[1]
    sizes = {"batch": b, "d_inner": d_inner, "L": L, "d_state": N}
    given = dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
    for name, t in given.items():
        if t is None and name in ("D", "z", "delta_bias"):
            continue
        layout = _LAYOUT[name]
        shape = tuple(sizes[s] for s in layout.strip("(,)").split(", "))
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a tensor of shape {layout}, got {type(t).__name__}")
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {layout} = {shape}, got {tuple(t.shape)}")
        if t.dtype not in _FLOATS:
            raise ValueError(
                f"{name} must be a floating-point tensor (float16/bfloat16/float32/float64), "
                f"got {t.dtype}"
            )
        if t.device != u.device:
            raise ValueError(f"{name} is on {t.device} but u is on {u.device}; use one device")
    for name, flag in (
        ("delta_softplus", delta_softplus),
        ("return_last_state", return_last_state),
    ):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be a bool, got {flag!r}")


# --------------------------------------------------------------------------- the reference
def selective_scan_ref(
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
    """The selective scan as a loop over time; shapes as :func:`selective_scan` (no checks).

    Mirrors mamba_ssm's ``selective_scan_ref``; differs in iterating over ``unbind()`` slices
    and computing ``y`` from the stacked states after the loop, which keeps autograd's backward
    linear in L (indexing one step at a time makes it quadratic).
    """
    dtype = compute_dtype(u)
    u_, A_, B_, C_ = (t.to(dtype) for t in (u, A, B, C))
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]  # Δ ← Δ + bias
    if delta_softplus:
        delta = F.softplus(delta)  # Δ ← softplus(Δ)

    # time first, so that each step's (b, d_inner, N) slice is contiguous
    dt, ut = delta.transpose(1, 2), u_.transpose(1, 2)  # (b, L, d)
    A_bar = torch.exp(dt[..., None] * A_)  # Ā_t = exp(Δ_t A)    (b, L, d_inner, N)
    Bu_bar = (dt * ut)[..., None] * B_.transpose(1, 2)[:, :, None]  # B̄u_t = Δ_t B_t u_t

    h = u_.new_zeros(u.shape[0], u.shape[1], A.shape[1])  # h_0 = 0   (b, d_inner, N)
    states = []
    for A_t, Bu_t in zip(A_bar.unbind(1), Bu_bar.unbind(1), strict=True):
        h = A_t * h + Bu_t  # h_t = Ā_t ⊙ h_{t-1} + B̄u_t
        states.append(h)
    hs = torch.stack(states, dim=1)  # (b, L, d_inner, N)

    y = einsum(hs, C_, "b L d_inner N, b N L -> b d_inner L")  # y_t = C_t · h_t
    if D is not None:
        y = y + D.to(dtype)[:, None] * u_  # y ← y + D u
    if z is not None:
        y = y * F.silu(z.to(dtype))  # y ← y · silu(z)
    y = y.to(u.dtype)
    return (y, h) if return_last_state else y


# --------------------------------------------------------------------------- test inputs
def random_scan_inputs(
    batch: int,
    d_inner: int,
    L: int,
    d_state: int,
    *,
    D: bool = True,
    z: bool = True,
    delta_bias: bool = True,
    delta_softplus: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    requires_grad: bool = False,
) -> dict[str, Tensor | None]:
    """Random keyword arguments for :func:`selective_scan`, in Mamba's ranges: what the tests,
    the benchmarks and the book draw. Shapes as :func:`selective_scan`.

    A = −exp(·) < 0; Δ is raw (about −1, before the softplus) with ``delta_softplus=True``, and
    already positive without it. The numbers come from one float64 stream in a fixed order, so
    they do not depend on ``dtype``, ``device`` or which optional inputs are asked for.
    """
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    t = {"u": r(batch, d_inner, L), "delta": r(batch, d_inner, L) * 0.5 - 1.0}
    if not delta_softplus:
        t["delta"] = F.softplus(t["delta"])
    t["A"] = -torch.exp(r(d_inner, d_state) * 0.5)
    t["B"], t["C"] = r(batch, d_state, L), r(batch, d_state, L)
    t["D"], t["z"], t["delta_bias"] = r(d_inner), r(batch, d_inner, L), r(d_inner) * 0.1
    for name, wanted in (("D", D), ("z", z), ("delta_bias", delta_bias)):
        if not wanted:
            t[name] = None
    return {
        k: v.to(device=device, dtype=dtype).requires_grad_(requires_grad) if v is not None else v
        for k, v in t.items()
    }

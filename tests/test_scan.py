"""selective_scan: every backend against transformers' reference, gradients, dtypes, errors."""

import pytest
import torch
from scan_helpers import assert_close, hf_scan, make_inputs, run

import jamba_min as jm
from jamba_min.ops import chunked_scan

BACKENDS = ["ref", "parallel"]
SHAPES = [(2, 5, 1, 4), (2, 5, 7, 4), (1, 6, 129, 16), (2, 3, 1000, 8)]  # (b, d_inner, L, d_state)
OPTIONS = [
    dict(),
    dict(D=True, z=True, delta_bias=True, delta_softplus=True, return_last_state=True),
    dict(D=True, delta_softplus=True),
    dict(z=True, delta_bias=True, return_last_state=True),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_matches_transformers_reference(backend, shape, options):
    # float32: transformers' reference casts B to float32 even for float64 inputs
    inputs = make_inputs(*shape, dtype=torch.float32, **options)
    ours = run(lambda **kw: jm.selective_scan(**kw, backend=backend), inputs, **options)
    theirs = run(hf_scan, inputs, **options)
    assert_close(ours, theirs, tol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_parallel_matches_ref_in_float64(shape, options):
    inputs = make_inputs(*shape, **options)
    ref = run(lambda **kw: jm.selective_scan(**kw, backend="ref"), inputs, **options)
    par = run(lambda **kw: jm.selective_scan(**kw, backend="parallel"), inputs, **options)
    assert_close(par, ref, tol=1e-12)


@pytest.mark.parametrize("budget", [1, 7, 64, 1000])
@pytest.mark.parametrize("L", [1, 2, 13, 100])
def test_parallel_block_and_chunk_boundaries(monkeypatch, budget, L):
    # tiny block budgets force many blocks, chunks of one step, and padded last blocks
    monkeypatch.setattr(chunked_scan, "BLOCK_ELEMENTS", budget)
    options = OPTIONS[1]
    inputs = make_inputs(2, 3, L, 2, **options)
    ref = run(lambda **kw: jm.selective_scan(**kw, backend="ref"), inputs, **options)
    par = run(lambda **kw: jm.selective_scan(**kw, backend="parallel"), inputs, **options)
    assert_close(par, ref, tol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(monkeypatch, backend):
    monkeypatch.setattr(chunked_scan, "BLOCK_ELEMENTS", 24)  # several blocks even at this size
    inputs = make_inputs(2, 3, 11, 2, D=True, z=True, delta_bias=True)
    names = list(inputs)

    def fn(*tensors):
        return jm.selective_scan(
            **dict(zip(names, tensors, strict=True)),
            delta_softplus=True,
            return_last_state=True,
            backend=backend,
        )

    assert torch.autograd.gradcheck(fn, tuple(inputs.values()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(backend, dtype):
    inputs = make_inputs(2, 6, 50, 4, dtype=torch.float32, D=True, z=True)
    half = {k: v.detach().to(dtype) if v is not None else None for k, v in inputs.items()}
    y, h = jm.selective_scan(**half, delta_softplus=True, return_last_state=True, backend=backend)
    assert y.dtype == dtype and h.dtype == torch.float32
    upcast = {k: v.float() if v is not None else None for k, v in half.items()}
    y32, h32 = jm.selective_scan(
        **upcast, delta_softplus=True, return_last_state=True, backend="ref"
    )
    torch.testing.assert_close(y, y32.to(dtype))
    torch.testing.assert_close(h, h32, rtol=1e-5, atol=1e-5)


def test_long_sequence_stays_finite():
    L = 65_536
    inputs = make_inputs(1, 8, L, 16, dtype=torch.float32, D=True, requires_grad=False)
    y, h = jm.selective_scan(**inputs, delta_softplus=True, return_last_state=True)
    assert y.shape == (1, 8, L) and torch.isfinite(y).all() and torch.isfinite(h).all()
    assert y.abs().max() > 0


def test_non_contiguous_inputs():
    inputs = make_inputs(2, 5, 9, 3, dtype=torch.float32)
    strided = {
        k: v.detach().transpose(-1, -2).contiguous().transpose(-1, -2)
        if v is not None and v.dim() == 3
        else v
        for k, v in inputs.items()
    }
    for backend in BACKENDS:
        torch.testing.assert_close(
            jm.selective_scan(**strided, backend=backend),
            jm.selective_scan(**inputs, backend="ref"),
        )


def test_auto_is_parallel_on_cpu():
    inputs = make_inputs(1, 3, 5, 2, requires_grad=False)
    assert torch.equal(jm.selective_scan(**inputs), jm.selective_scan(**inputs, backend="parallel"))


# --------------------------------------------------------------------------- bad input
def good():
    return make_inputs(
        2, 5, 7, 4, dtype=torch.float32, D=True, z=True, delta_bias=True, requires_grad=False
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "u",
            torch.zeros(2, 5),
            r"u must be a tensor of shape \(batch, d_inner, L\) .*got \(2, 5\)",
        ),
        ("u", [[1.0]], "u must be a tensor of shape .* got list"),
        ("u", torch.zeros(2, 5, 0), "at least 1"),
        (
            "delta",
            torch.zeros(2, 5, 8),
            r"delta must have shape \(batch, d_inner, L\) = \(2, 5, 7\), got \(2, 5, 8\)",
        ),
        (
            "A",
            torch.zeros(5, 4, 1),
            r"A must have shape \(d_inner, d_state\) = \(5, d_state\), got \(5, 4, 1\)",
        ),
        (
            "A",
            torch.zeros(6, 4),
            r"A must have shape \(d_inner, d_state\) = \(5, d_state\), got \(6, 4\)",
        ),
        (
            "B",
            torch.zeros(2, 7, 4),
            r"B must have shape \(batch, d_state, L\) = \(2, 4, 7\), got \(2, 7, 4\)",
        ),
        (
            "C",
            torch.zeros(2, 4),
            r"C must have shape \(batch, d_state, L\) = \(2, 4, 7\), got \(2, 4\)",
        ),
        ("D", torch.zeros(4), r"D must have shape \(d_inner,\) = \(5,\), got \(4,\)"),
        (
            "z",
            torch.zeros(1, 5, 7),
            r"z must have shape \(batch, d_inner, L\) = \(2, 5, 7\), got \(1, 5, 7\)",
        ),
        (
            "delta_bias",
            torch.zeros(5, 1),
            r"delta_bias must have shape \(d_inner,\) = \(5,\), got \(5, 1\)",
        ),
        (
            "B",
            torch.zeros(2, 4, 7, dtype=torch.int64),
            "B must be a floating-point tensor .* got torch.int64",
        ),
        ("C", torch.zeros(2, 4, 7, device="meta"), "C is on meta but u is on cpu"),
        ("delta_softplus", 1, "delta_softplus must be a bool, got 1"),
        ("return_last_state", "yes", "return_last_state must be a bool"),
    ],
)
@pytest.mark.parametrize("backend", [*BACKENDS, "auto"])
def test_bad_input_names_the_argument(backend, name, value, message):
    kw = {**good(), name: value}
    with pytest.raises(ValueError, match=message):
        jm.selective_scan(**kw, backend=backend)


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match="backend must be one of 'ref', 'parallel', 'triton', 'auto'; got 'fast'"
    ):
        jm.selective_scan(**good(), backend="fast")

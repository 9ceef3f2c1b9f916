"""backend="triton": forward, last state and every gradient against "ref" and transformers;
the chunk-parallel forward kernel against "ref".

Without a GPU the kernels run in Triton's interpreter, so the sizes stay small.
"""

import os
import subprocess
import sys

import pytest
import torch
from scan_helpers import assert_close, hf_scan, make_inputs, run

import jamba_min as jm

pytest.importorskip("triton")

SHAPES = [(2, 5, 1, 4), (2, 5, 7, 8), (1, 20, 37, 16), (2, 19, 70, 4)]  # (b, d_inner, L, d_state)
OPTIONS = [
    dict(),
    dict(D=True, z=True, delta_bias=True, delta_softplus=True, return_last_state=True),
    dict(z=True, return_last_state=True),
    dict(D=True, delta_bias=True),
]


def triton_scan(**kw):
    return jm.selective_scan(**kw, backend="triton")


# every option set on every shape, except that the longest shape (the slowest in the
# interpreter) runs with all options on at once only
CASES = [(s, o) for s in SHAPES for o in OPTIONS if s != SHAPES[-1] or o is OPTIONS[1]]


@pytest.mark.parametrize(
    ("shape", "options"),
    CASES,
    ids=lambda c: str(c) if isinstance(c, tuple) else ",".join(c) or "plain",
)
def test_matches_ref_and_transformers(shape, options):
    inputs = make_inputs(*shape, dtype=torch.float32, **options)
    ours = run(triton_scan, inputs, **options)
    assert_close(
        ours, run(lambda **kw: jm.selective_scan(**kw, backend="ref"), inputs, **options), tol=1e-5
    )
    assert_close(ours, run(hf_scan, inputs, **options), tol=1e-5)


@pytest.mark.parametrize(("block_d", "chunk"), [(4, 4), (8, 16), (32, 1)])
def test_tile_sizes_do_not_change_the_result(block_d, chunk):
    # d_inner = 13 is not a multiple of any block; L = 37 leaves a partial last chunk
    options = OPTIONS[1]
    inputs = make_inputs(1, 13, 37, 8, dtype=torch.float32, **options)
    from jamba_min.ops.triton_scan import selective_scan_triton

    tiled = run(
        lambda **kw: selective_scan_triton(**kw, block_d=block_d, chunk=chunk),
        inputs,
        **options,
    )
    assert_close(
        tiled, run(lambda **kw: jm.selective_scan(**kw, backend="ref"), inputs, **options), tol=1e-5
    )


def test_half_precision_inputs_come_back_in_their_dtype():
    inputs = make_inputs(2, 6, 20, 4, dtype=torch.float32, D=True, z=True)
    half = {k: v.detach().to(torch.bfloat16) if v is not None else None for k, v in inputs.items()}
    y = jm.selective_scan(**half, backend="triton")
    assert y.dtype == torch.bfloat16
    ref = jm.selective_scan(
        **{k: v.float() if v is not None else None for k, v in half.items()}, backend="ref"
    )
    torch.testing.assert_close(y, ref.to(torch.bfloat16))


def test_bad_input_is_checked_before_the_kernel():
    inputs = make_inputs(2, 5, 7, 4, dtype=torch.float32, requires_grad=False)
    inputs["B"] = inputs["B"].transpose(1, 2)
    with pytest.raises(ValueError, match=r"B must have shape \(batch, d_state, L\) = \(2, 4, 7\)"):
        jm.selective_scan(**inputs, backend="triton")


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="the interpreter switch is for GPU-less machines"
)
def test_import_enables_the_interpreter_without_a_gpu():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = run_python("import os, jamba_min; print(os.environ['TRITON_INTERPRET'])", env)
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="the interpreter switch is for GPU-less machines"
)
def test_warns_when_triton_was_imported_first():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = run_python("import triton, jamba_min", env)
    assert "triton was imported before jamba_min" in done.stderr
    env["TRITON_INTERPRET"] = "0"  # the user's own choice is left alone, silently
    done = run_python("import os, triton, jamba_min; print(os.environ['TRITON_INTERPRET'])", env)
    assert done.stdout.strip() == "0" and "imported before" not in done.stderr


def test_gradient_through_the_last_state_alone():
    # only h_L feeds the loss: y's gradient arrives as None and must count as zero
    inputs = make_inputs(2, 5, 9, 4, dtype=torch.float32, D=True, z=True)
    grads = {}
    for backend in ("triton", "ref"):
        _, h = jm.selective_scan(**inputs, return_last_state=True, backend=backend)
        grads[backend] = torch.autograd.grad(h.sum(), [inputs["u"], inputs["delta"], inputs["A"]])
    for ours, ref in zip(grads["triton"], grads["ref"], strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_tile_sizes_are_checked():
    from jamba_min.ops.triton_scan import selective_scan_triton

    inputs = make_inputs(1, 5, 4, 4, dtype=torch.float32, requires_grad=False)
    with pytest.raises(ValueError, match=r"block_d must be a power of two .* got 12"):
        selective_scan_triton(**inputs, block_d=12)
    with pytest.raises(ValueError, match="chunk must be a positive int, got 0"):
        selective_scan_triton(**inputs, chunk=0)


# the chunk-parallel forward: (b, d_inner, L, d_state), block_d, chunk, options. L is never a
# multiple of the chunk (L = 1 < CHUNK included) and d_inner never one of the channel block;
# the interpreter runs tl.associative_scan element by element, so the tiles stay small
CHUNKED_CASES = [
    ((2, 5, 1, 4), None, None, dict()),
    ((1, 13, 37, 8), 4, 8, OPTIONS[1]),
    ((2, 6, 23, 12), 4, 16, dict(delta_bias=True, delta_softplus=True, return_last_state=True)),
    ((1, 9, 40, 16), None, None, dict(D=True, z=True, return_last_state=True)),
    ((2, 3, 19, 4), 2, 4, dict(D=True, delta_bias=True)),
]


@pytest.mark.parametrize(("shape", "block_d", "chunk", "options"), CHUNKED_CASES)
def test_chunked_forward_matches_ref(shape, block_d, chunk, options):
    from jamba_min.ops.triton_scan import selective_scan_triton_chunked

    inputs = make_inputs(*shape, dtype=torch.float32, requires_grad=False, **options)
    flags = {k: options.get(k, False) for k in ("delta_softplus", "return_last_state")}
    ours = selective_scan_triton_chunked(**inputs, **flags, block_d=block_d, chunk=chunk)
    ref = jm.selective_scan(**inputs, **flags, backend="ref")
    ours, ref = ((*o, {}) if isinstance(o, tuple) else (o, None, {}) for o in (ours, ref))
    assert_close(ours, ref, tol=1e-5)


def test_chunked_forward_refuses_what_it_cannot_do():
    from jamba_min.ops.triton_scan import selective_scan_triton_chunked

    inputs = make_inputs(1, 5, 4, 4, dtype=torch.float32, requires_grad=True)
    with pytest.raises(ValueError, match="forward only and an input requires grad"):
        selective_scan_triton_chunked(**inputs)
    with torch.no_grad():
        y = selective_scan_triton_chunked(**inputs)  # fine without a graph
        with pytest.raises(ValueError, match=r"chunk must be a power of two .* got 12"):
            selective_scan_triton_chunked(**inputs, chunk=12)
        with pytest.raises(ValueError, match="has no float64 path"):
            selective_scan_triton_chunked(
                **{k: v.double() for k, v in inputs.items() if v is not None}
            )
    assert y.shape == (1, 5, 4)


def test_chunked_tile_sizes():
    from jamba_min.ops.triton_scan import CHUNKED_TILE, chunked_tile_sizes

    assert chunked_tile_sizes(2048, 16) == (4, 16, 32)  # 4 · 16 · 32 = CHUNKED_TILE
    assert chunked_tile_sizes(5, 4) == (8, 4, 32)  # no more channels than d_inner needs
    assert chunked_tile_sizes(2048, 128) == (1, 128, 32)  # at least one channel
    assert chunked_tile_sizes(64, 16, block_d=2, chunk=8) == (2, 16, 8)
    assert CHUNKED_TILE == 4 * 16 * 32


def test_chunked_forward_half_precision_inputs_come_back_in_their_dtype():
    from jamba_min.ops.triton_scan import selective_scan_triton_chunked

    inputs = make_inputs(2, 6, 20, 4, dtype=torch.float32, requires_grad=False, D=True, z=True)
    half = {k: v.to(torch.bfloat16) if v is not None else None for k, v in inputs.items()}
    y = selective_scan_triton_chunked(**half, chunk=8)
    assert y.dtype == torch.bfloat16
    ref = jm.selective_scan(
        **{k: v.float() if v is not None else None for k, v in half.items()}, backend="ref"
    )
    torch.testing.assert_close(y, ref.to(torch.bfloat16))

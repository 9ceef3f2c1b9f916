"""The Triton kernels on a CUDA GPU (chapter 4): time and achieved bandwidth.

    python benchmarks/triton_gpu.py --json benchmarks/triton_gpu.json
    python benchmarks/triton_gpu.py --lengths 1024 4096
    python benchmarks/triton_gpu.py --d-inner 8192 --json benchmarks/triton_gpu_8192.json

Run from the repository root on a machine with a CUDA GPU. Times the forward and the forward plus
backward of the ``"triton"`` and ``"parallel"`` backends, and of mamba_ssm's CUDA kernel when it
is installed, and the forward of the chunk-parallel Triton kernel (``"triton_chunked"``,
``selective_scan_triton_chunked``, forward only), with ``triton.testing.do_bench`` (which
synchronises the GPU around the calls), and turns each time into the bandwidth that
``jamba_min.scan_bytes``, the minimal traffic, implies.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # _common, and this checkout's jamba_min
from _common import parser, write_json  # noqa: E402

TRITON_SHAPE = {"batch": 2, "d_inner": 2048, "d_state": 16}


def bench_triton(lengths: list[int], rep_ms: int = 100, d_inner: int | None = None) -> dict:
    """Time the Triton kernels against "parallel" and mamba_ssm's CUDA kernel on one GPU."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("the Triton benchmark needs a CUDA GPU; none is available here")
    import triton

    from jamba_min import scan_bytes, selective_scan
    from jamba_min.ops import random_scan_inputs
    from jamba_min.ops.triton_scan import selective_scan_triton_chunked

    impls = {
        "triton": lambda **t: selective_scan(**t, delta_softplus=True, backend="triton"),
        "triton_chunked": lambda **t: selective_scan_triton_chunked(**t, delta_softplus=True),
        "parallel": lambda **t: selective_scan(**t, delta_softplus=True, backend="parallel"),
    }
    forward_only = {"triton_chunked"}
    if importlib.util.find_spec("mamba_ssm") is not None:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        impls["mamba_ssm"] = lambda **t: selective_scan_fn(**t, delta_softplus=True)
    shape = TRITON_SHAPE | ({"d_inner": d_inner} if d_inner else {})
    b, d, n = shape["batch"], shape["d_inner"], shape["d_state"]
    name = torch.cuda.get_device_name()
    print(f"selective scan on {name}, batch {b}, d_inner {d}, d_state {n}, float32")
    print(f"{'L':>6} {'mode':>8} {'implementation':>15} {'time (ms)':>10} {'GB/s':>8}")
    results = []
    for L in lengths:
        t = random_scan_inputs(b, d, L, n, device="cuda")
        for mode in ("fwd", "fwd+bwd"):
            for impl, fn in impls.items():
                if mode == "fwd+bwd" and impl in forward_only:
                    continue
                args = {k: v.detach().requires_grad_(mode == "fwd+bwd") for k, v in t.items()}
                grad = torch.ones(b, d, L, device="cuda")

                def call(fn=fn, args=args, mode=mode, grad=grad):
                    if mode == "fwd":
                        with torch.no_grad():
                            fn(**args)
                    else:
                        fn(**args).backward(grad)

                ms = triton.testing.do_bench(call, warmup=max(1, rep_ms // 4), rep=rep_ms)
                gbs = scan_bytes(b, d, n, L, mode) / (ms * 1e-3) / 1e9
                results.append({"impl": impl, "L": L, "mode": mode, "ms": ms, "GB/s": gbs})
                print(f"{L:>6} {mode:>8} {impl:>15} {ms:>10.3f} {gbs:>8.1f}", flush=True)
    table = {(r["impl"], r["L"], r["mode"]): r for r in results}
    ratios = []
    for (impl, L, mode), r in table.items():
        if impl == "triton" and ("mamba_ssm", L, mode) in table:
            ratio = table["mamba_ssm", L, mode]["ms"] / r["ms"]
            ratios.append({"L": L, "mode": mode, "speed vs mamba_ssm": ratio})
            print(f"  triton vs mamba_ssm {mode:>7} L={L:<6} {ratio:.2f}× (goal ≥ 0.8× fwd+bwd)")
    return {
        "benchmark": "selective_scan_gpu",
        "gpu": name,
        "shape": shape,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "mamba_ssm": "mamba_ssm" in impls,
        "results": results,
        "ratios": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    p.add_argument("--d-inner", type=int, help=f"default {TRITON_SHAPE['d_inner']}")
    p.add_argument("--rep-ms", type=int, default=100, help="do_bench's rep, in ms (default 100)")
    args = p.parse_args(argv)
    write_json(bench_triton(args.lengths, args.rep_ms, args.d_inner), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Triton kernels on a CUDA GPU (chapter 4): time and achieved bandwidth."""

from __future__ import annotations

TRITON_SHAPE = {"batch": 2, "d_inner": 2048, "d_state": 16}


def scan_bytes(b: int, d: int, n: int, L: int, mode: str) -> int:
    """Bytes a scan must move between HBM and the chip at the least (float32).

    Forward: read u, Δ, z, B, C and write y. The backward reads them again with ∂L/∂y and writes
    the gradients of u, Δ, z, B and C. States never leave the chip in this count.
    """
    per_pass = 4 * (3 * b * d * L + 2 * b * n * L)  # u, Δ, z and B, C
    fwd = per_pass + 4 * b * d * L
    return fwd if mode == "fwd" else fwd + 2 * per_pass + 2 * 4 * b * d * L


def bench_triton(lengths: list[int], rep_ms: int = 100) -> dict:
    """Time the Triton kernels against "parallel" and mamba_ssm's CUDA kernel on one GPU."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("the Triton benchmark needs a CUDA GPU; none is available here")
    import triton

    from jamba_min import selective_scan

    impls = {
        "triton": lambda **t: selective_scan(**t, delta_softplus=True, backend="triton"),
        "parallel": lambda **t: selective_scan(**t, delta_softplus=True, backend="parallel"),
    }
    if importlib.util.find_spec("mamba_ssm") is not None:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        impls["mamba_ssm"] = lambda **t: selective_scan_fn(**t, delta_softplus=True)
    b, d, n = TRITON_SHAPE["batch"], TRITON_SHAPE["d_inner"], TRITON_SHAPE["d_state"]
    name = torch.cuda.get_device_name()
    print(f"selective scan on {name}, batch {b}, d_inner {d}, d_state {n}, float32")
    print(f"{'L':>6} {'mode':>8} {'implementation':>14} {'time (ms)':>10} {'GB/s':>8}")
    results = []
    for L in lengths:
        g = torch.Generator(device="cuda").manual_seed(0)
        t = {
            "u": torch.randn(b, d, L, device="cuda", generator=g),
            "delta": torch.randn(b, d, L, device="cuda", generator=g) * 0.5 - 1.0,
            "A": -torch.exp(torch.randn(d, n, device="cuda", generator=g) * 0.5),
            "B": torch.randn(b, n, L, device="cuda", generator=g),
            "C": torch.randn(b, n, L, device="cuda", generator=g),
            "D": torch.randn(d, device="cuda", generator=g),
            "z": torch.randn(b, d, L, device="cuda", generator=g),
            "delta_bias": torch.randn(d, device="cuda", generator=g) * 0.1,
        }
        for mode in ("fwd", "fwd+bwd"):
            for impl, fn in impls.items():
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
                print(f"{L:>6} {mode:>8} {impl:>14} {ms:>10.3f} {gbs:>8.1f}", flush=True)
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
        "shape": TRITON_SHAPE,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "mamba_ssm": "mamba_ssm" in impls,
        "results": results,
        "ratios": ratios,
    }

"""The selective scan on a CPU against transformers and mambapy (chapter 3's targets)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time

from ._common import cpu_name

SCAN_SHAPE = {"batch": 2, "d_inner": 256, "d_state": 16}
SCAN_IMPLS = ("parallel", "ref", "transformers", "pscan")
# (implementation, L, mode) combinations too slow to be worth running
SKIP = {("transformers", 4096, "fwd+bwd")}  # quadratic backward: several minutes per call
#: What chapter 3 promises: (implementation, baseline, L, mode, minimum speed-up).
SCAN_TARGETS = [
    ("parallel", "transformers", 1024, "fwd+bwd", 300.0),
    ("parallel", "pscan", 4096, "fwd+bwd", 4.0),
    ("parallel", "transformers", 4096, "fwd", 8.0),
    ("ref", "transformers", 1024, "fwd+bwd", 50.0),
]
#: Peak-memory promise: parallel fwd+bwd at L = 4096 uses at most this fraction of pscan's.
SCAN_MEMORY_TARGET = ("parallel", "pscan", 4096, "fwd+bwd", 0.2)


# --------------------------------------------------------------------------- one measurement
def _measure_scan(impl: str, L: int, mode: str, repeat: int, threads: int) -> dict:
    """Runs in the child process: time and peak memory of one (impl, L, mode)."""
    import resource
    import warnings

    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    fn = _scan_impl(impl)
    b, d, n = SCAN_SHAPE["batch"], SCAN_SHAPE["d_inner"], SCAN_SHAPE["d_state"]

    def inputs(length: int) -> dict:
        g = torch.Generator().manual_seed(0)
        t = {
            "u": torch.randn(b, d, length, generator=g),
            "delta": torch.randn(b, d, length, generator=g) * 0.5 - 1.0,
            "A": -torch.exp(torch.randn(d, n, generator=g) * 0.5),
            "B": torch.randn(b, n, length, generator=g),
            "C": torch.randn(b, n, length, generator=g),
            "D": torch.randn(d, generator=g),
            "z": torch.randn(b, d, length, generator=g),
            "delta_bias": torch.randn(d, generator=g) * 0.1,
        }
        if mode == "fwd+bwd":
            for v in t.values():
                v.requires_grad_()
        return t

    def call(t: dict) -> None:
        if mode == "fwd":
            with torch.no_grad():
                fn(**t)
        else:
            fn(**t).sum().backward()

    call(inputs(min(L, 64)))  # warm-up: imports, lazy initialisation
    t = inputs(L)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call(t)
        times.append(time.perf_counter() - start)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    return {"impl": impl, "L": L, "mode": mode, "seconds": min(times), "peak_mib": peak_kib / 1024}


def _scan_impl(impl: str):
    import torch
    import torch.nn.functional as F

    if impl in ("parallel", "ref"):
        from jamba_min import selective_scan

        return lambda **t: selective_scan(**t, delta_softplus=True, backend=impl)
    if impl == "transformers":
        from transformers.models.jamba import modeling_jamba
        from transformers.utils import logging

        logging.set_verbosity_error()

        def hf(u, delta, **t):
            return modeling_jamba.mamba_selective_scan(u, delta, **t, delta_softplus=True)

        return hf
    if impl == "pscan":
        from mambapy.pscan import pscan

        def mambapy_scan(u, delta, A, B, C, D, z, delta_bias):
            # what transformers runs with use_mambapy=True, as one function
            delta = F.softplus(delta + delta_bias[:, None])
            dA = torch.exp(A[None, :, None, :] * delta[..., None])
            dBu = (delta * u)[..., None] * B.transpose(1, 2)[:, None]
            hs = pscan(dA.transpose(1, 2), dBu.transpose(1, 2))  # (b, L, d, n)
            y = (hs @ C.transpose(1, 2)[..., None]).squeeze(-1).transpose(1, 2)
            return (y + D[:, None] * u) * F.silu(z)

        return mambapy_scan
    raise ValueError(f"unknown implementation {impl!r}; expected one of {SCAN_IMPLS}")


def _available(impl: str) -> bool:
    import importlib.util

    module = {"transformers": "transformers", "pscan": "mambapy"}.get(impl)
    return module is None or importlib.util.find_spec(module) is not None


def _run_child(args: list[str]) -> dict | None:
    cmd = [sys.executable, "-m", "jamba_min.bench", "_child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  ! {' '.join(args)} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the scan report
def bench_scan(lengths: list[int], threads: int, repeat: int, impls: list[str]) -> dict:
    import torch

    results = []
    print(
        f"selective scan, batch {SCAN_SHAPE['batch']}, d_inner {SCAN_SHAPE['d_inner']}, "
        f"d_state {SCAN_SHAPE['d_state']}, float32, {threads} threads, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )
    print(f"{'L':>6} {'mode':>8} {'implementation':>14} {'time (ms)':>11} {'peak (MiB)':>11}")
    for L in lengths:
        for mode in ("fwd", "fwd+bwd"):
            for impl in impls:
                if (impl, L, mode) in SKIP or not _available(impl):
                    continue
                slow = impl == "transformers" and mode == "fwd+bwd"
                r = _run_child([impl, str(L), mode, str(1 if slow else repeat), str(threads)])
                if r is None:
                    continue
                results.append(r)
                print(
                    f"{L:>6} {mode:>8} {impl:>14} {r['seconds'] * 1e3:>11.1f} "
                    f"{r['peak_mib']:>11.1f}",
                    flush=True,
                )
    table = {(r["impl"], r["L"], r["mode"]): r for r in results}

    print("\nspeed-ups of jamba_min measured above (baseline time / our time):")
    checks = []
    for ours, base, L, mode, target in SCAN_TARGETS:
        if (ours, L, mode) in table and (base, L, mode) in table:
            ratio = table[base, L, mode]["seconds"] / table[ours, L, mode]["seconds"]
            ok = ratio >= target
            checks.append({"what": f"{ours} vs {base}, {mode}, L={L}", "ratio": ratio,
                           "target": target, "met": ok})  # fmt: skip
            print(f"  {ours:>8} vs {base:<12} {mode:>7} L={L:<5} {ratio:8.1f}×  "
                  f"(target ≥ {target:g}×) {'met' if ok else 'NOT MET'}")  # fmt: skip
    ours, base, L, mode, limit = SCAN_MEMORY_TARGET
    if (ours, L, mode) in table and (base, L, mode) in table:
        frac = table[ours, L, mode]["peak_mib"] / table[base, L, mode]["peak_mib"]
        ok = frac <= limit
        checks.append({"what": f"peak memory {ours} / {base}, {mode}, L={L}", "ratio": frac,
                       "target": limit, "met": ok})  # fmt: skip
        print(f"  peak memory {ours} / {base} {mode} L={L}: {frac:.3f} "
              f"(target ≤ {limit:g}) {'met' if ok else 'NOT MET'}")  # fmt: skip
    return {
        "benchmark": "selective_scan",
        "shape": SCAN_SHAPE,
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": cpu_name(),
        "results": results,
        "checks": checks,
    }

"""The selective scan on a CPU against transformers and mambapy (chapter 3's targets).

    python benchmarks/scan.py            # L = 256, 1024 and 4096
    python benchmarks/scan.py --quick    # L = 256 and 1024 only: about two minutes
    python benchmarks/scan.py --json benchmarks/scan_cpu.json

Run from the repository root. Every measurement runs in a fresh Python process (this script,
started again), so that its peak memory (the growth of the process's peak resident set during
the timed calls, over the resident set just before them) is its own. Times are the best of a few
calls after a warm-up call on a short sequence. Threads are fixed (``--threads``, default 2). The
speed-ups printed at the end are ratios of times measured in the same run.

Baselines, when installed: transformers' CPU fallback ``mamba_selective_scan`` (the loop that
``JambaForCausalLM`` runs without mamba_ssm) and mambapy's ``pscan`` (transformers with
``use_mambapy=True``). Neither is needed to run jamba_min.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # _common, and this checkout's jamba_min
from _common import cpu_name, parser, write_json  # noqa: E402

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
def measure_scan(impl: str, L: int, mode: str, repeat: int, threads: int) -> dict:
    """Runs in the child process: time and peak memory of one (impl, L, mode)."""
    import warnings

    import torch

    from jamba_min.ops import random_scan_inputs

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    fn = scan_impl(impl)
    b, d, n = SCAN_SHAPE["batch"], SCAN_SHAPE["d_inner"], SCAN_SHAPE["d_state"]

    def inputs(length: int) -> dict:
        return random_scan_inputs(b, d, length, n, requires_grad=mode == "fwd+bwd")

    def call(t: dict) -> None:
        if mode == "fwd":
            with torch.no_grad():
                fn(**t)
        else:
            fn(**t).sum().backward()

    call(inputs(min(L, 64)))  # warm-up: imports, lazy initialisation
    t = inputs(L)
    # Our own loop, not torch.utils.benchmark: the peak memory must cover exactly these calls,
    # and the slowest baseline (most of a minute a call) runs once (see _common.py).
    rss0 = reset_peak_rss()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call(t)
        times.append(time.perf_counter() - start)
    peak_kib = peak_rss() - rss0
    return {"impl": impl, "L": L, "mode": mode, "seconds": min(times), "peak_mib": peak_kib / 1024}


def peak_rss() -> int:
    """The process's peak resident set in KiB: Linux's VmHWM, else getrusage's ru_maxrss."""
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> int:
    """Start the peak afresh from the current resident set, where the system allows; KiB.

    The inputs come from a float64 stream (``random_scan_inputs``) whose freed buffers would
    otherwise raise the peak before the timed calls, or stay in the allocator for them to reuse;
    either would hide part of their memory.
    """
    import contextlib
    import ctypes

    with contextlib.suppress(AttributeError, OSError, TypeError):
        ctypes.CDLL(None).malloc_trim(0)  # glibc: give freed heap memory back to the system
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux: reset the peak (VmHWM) to the current resident set
    return peak_rss()


def scan_impl(impl: str):
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


def available(impl: str) -> bool:
    import importlib.util

    module = {"transformers": "transformers", "pscan": "mambapy"}.get(impl)
    return module is None or importlib.util.find_spec(module) is not None


def run_child(args: list[str]) -> dict | None:
    cmd = [sys.executable, __file__, "_child", *args]
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
                if (impl, L, mode) in SKIP or not available(impl):
                    continue
                slow = impl == "transformers" and mode == "fwd+bwd"
                r = run_child([impl, str(L), mode, str(1 if slow else repeat), str(threads)])
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":  # one measurement, started by run_child
        impl, L, mode, repeat, threads = argv[1:]
        print(json.dumps(measure_scan(impl, int(L), mode, int(repeat), int(threads))))
        return 0
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="L = 256 and 1024 only")
    p.add_argument("--lengths", type=int, nargs="+", help="default 256 1024 4096")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--repeat", type=int, default=3, help="timed calls per measurement (default 3)")
    p.add_argument("--impls", nargs="+", default=list(SCAN_IMPLS), choices=SCAN_IMPLS)
    args = p.parse_args(argv)
    lengths = [256, 1024] if args.quick else (args.lengths or [256, 1024, 4096])
    write_json(bench_scan(lengths, args.threads, args.repeat, args.impls), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

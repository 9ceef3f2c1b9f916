"""Benchmarks that print ratios against reference implementations measured in the same run.

    python -m jamba_min.bench scan            # the selective scan, chapter 3's targets
    python -m jamba_min.bench scan --quick    # L = 256 and 1024 only, skips the slowest baseline
    python -m jamba_min.bench scan --json results.json
    python -m jamba_min.bench triton --json benchmarks/triton_gpu.json   # needs a CUDA GPU
    python -m jamba_min.bench moe             # expert dispatch, chapter 7
    python -m jamba_min.bench model           # training step and generation, chapter 8

Every measurement runs in a fresh Python process, so that its peak memory (the growth of the
process's maximum resident set during the timed calls) is its own. Times are the best of a few
calls after a warm-up call on a short sequence. Threads are fixed (``--threads``, default 2).

Baselines, when installed: transformers' CPU fallback ``mamba_selective_scan`` (the loop that
``JambaForCausalLM`` runs without mamba_ssm) and mambapy's ``pscan`` (transformers with
``use_mambapy=True``). Neither is needed to run jamba_min.
"""

from __future__ import annotations

import argparse
import json
import sys

from .gpu import bench_triton, scan_bytes
from .model import MODEL_CONFIG, bench_model
from .moe import bench_moe
from .scan import SCAN_IMPLS, _measure_scan, bench_scan

__all__ = ["MODEL_CONFIG", "bench_model", "bench_moe", "bench_scan", "bench_triton", "main",
           "scan_bytes"]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        impl, L, mode, repeat, threads = argv[1:]
        print(json.dumps(_measure_scan(impl, int(L), mode, int(repeat), int(threads))))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m jamba_min.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "what", choices=["scan", "triton", "moe", "model"], help="what to benchmark"
    )
    parser.add_argument("--skip-slow", action="store_true", help="model: skip the ~1 min baseline")
    parser.add_argument("--lengths", type=int, nargs="+", help="sequence lengths")
    parser.add_argument("--quick", action="store_true", help="L = 256 and 1024 only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeat", type=int, help="timed calls (rounds) per measurement: 3, or 10 for model"
    )
    parser.add_argument("--impls", nargs="+", default=list(SCAN_IMPLS), choices=SCAN_IMPLS)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.what == "triton":
        report = bench_triton(args.lengths or [1024, 4096, 16384])
    elif args.what == "moe":
        report = bench_moe(args.threads, args.repeat or 3)
    elif args.what == "model":
        report = bench_model(args.threads, args.repeat or 10, args.skip_slow)
    else:
        lengths = [256, 1024] if args.quick else (args.lengths or [256, 1024, 4096])
        report = bench_scan(lengths, args.threads, args.repeat or 3, args.impls)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0

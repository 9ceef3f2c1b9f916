"""Decoding at long context (chapter 11): tokens/s and bytes held, hybrid against pure models.

    python benchmarks/decode.py --quick      # contexts 1K and 8K only; under a minute
    python benchmarks/decode.py              # contexts 64 … 16K: a minute idle, 10 busy
    python benchmarks/decode.py --steps 4 --repeat 30 --json benchmarks/decode.json --results

Three models of about equal parameter count (``jamba_min.longctx.decode_configs``: width 256,
8 layers, dense MLPs, about 6.8M parameters, float32, fresh weights): attention-only, the hybrid
1:7 (one attention layer in eight, Jamba's ratio) and Mamba-only. Each is prefilled with every
context once; then the rounds begin: in each round every (context, architecture) decodes
``--steps`` greedy tokens from its prefilled state (which is put back afterwards), in turn, so
that a slow spell of a shared machine falls on all of them (short rounds, many of them, spread
it most evenly). Each pair keeps its fastest step
(see ``jamba_min.longctx.decode_cost`` for why; the best round's median is recorded too), and
every ratio printed is a ratio of numbers from this one run. Bytes are measured on the cache's
tensors and checked equal to ``kv_cache_bytes`` and the Mamba state formula.

``--results`` also writes the JSON into the package, ``jamba_min/results/decode.json``, where
chapter 11 reads it (``jamba_min.results.load("decode")``), in Colab too.

Speed targets (issue 16; 2 threads): the hybrid's rate varies by at most 15% from context 64 to
16K; at 16K the hybrid decodes at least 1.5× as fast as attention-only and holds at most a
quarter of its cache.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # _common, and this checkout's jamba_min
from _common import cpu_name, parser, write_json  # noqa: E402

SWEEP = (64, 256, 1024, 2048, 4096, 8192, 16384)
QUICK = (1024, 8192)
RESULTS = HERE.parent / "jamba_min" / "results" / "decode.json"


def bench_decode(contexts, threads: int, steps: int, repeat: int, hidden: int, layers: int):
    import statistics

    import torch

    import jamba_min as jm
    from jamba_min import longctx

    torch.set_num_threads(threads)
    configs = longctx.decode_configs(hidden, layers)
    load_before = os.getloadavg()
    start = time.perf_counter()
    models, outs, prefill_s = {}, {}, {}
    for arch, cfg in configs.items():
        torch.manual_seed(0)
        models[arch] = jm.JambaForCausalLM(cfg).eval()
        for context in contexts:
            t = time.perf_counter()
            outs[arch, context] = longctx.prefill(models[arch], context, room=2 + steps)
            prefill_s[arch, context] = time.perf_counter() - t
    print(f"prefills done in {time.perf_counter() - start:.0f} s", flush=True)
    fastest = {key: float("inf") for key in outs}  # the fastest step
    median = {key: float("inf") for key in outs}  # the best round's median step
    for _ in range(repeat):
        for context in contexts:
            for arch in configs:
                times = longctx.time_steps(models[arch], outs[arch, context], steps, warmup=2)
                fastest[arch, context] = min(fastest[arch, context], min(times))
                median[arch, context] = min(median[arch, context], statistics.median(times))
    results = {arch: [] for arch in configs}
    for (arch, context), out in outs.items():
        held = longctx.held_bytes(out.cache)
        want = longctx.formula_bytes(configs[arch], context, 1, 4)
        assert all(held[k] == v for k, v in want.items()), (arch, context, held, want)
        results[arch].append({
            "context": context, "tokens_per_s": 1 / fastest[arch, context],
            "step_ms": 1e3 * fastest[arch, context],
            "tokens_per_s_median": 1 / median[arch, context], **held,
            "prefill_s": prefill_s[arch, context],
        })  # fmt: skip
    seconds = time.perf_counter() - start

    print(f"decode tokens/s (fastest of {repeat} rounds of {steps} steps; in brackets the best "
          f"round's median), {threads} threads, torch {torch.__version__}")  # fmt: skip
    print(f"{'context':>8}" + "".join(f"{a:>15}" for a in configs) + f"{'hybrid/attn':>13}")
    for i, context in enumerate(contexts):
        row = {a: results[a][i] for a in configs}
        line = f"{context:>8}" + "".join(
            f"{row[a]['tokens_per_s']:>8.1f} ({row[a]['tokens_per_s_median']:>4.0f})"
            for a in configs)  # fmt: skip
        if "attention" in row and "hybrid 1:7" in row:
            ratio = row["hybrid 1:7"]["tokens_per_s"] / row["attention"]["tokens_per_s"]
            line += f"{ratio:>12.2f}×"
        print(line)
    print("bytes held (KV used + Mamba states), MiB")
    for i, context in enumerate(contexts):
        print(f"{context:>8}" + "".join(
            f"{results[a][i]['cache_bytes'] / 2**20:>15.2f}" for a in configs))  # fmt: skip

    ratios, targets = summary(results, contexts)
    for name, value in ratios.items():
        print(f"  {name:<52} {value:8.3f}")
    for name, t in targets.items():
        print(f"  target: {name:<44} {t['value']:8.3f} (goal {t['goal']}) "
              f"{'met' if t['met'] else 'MISSED'}")  # fmt: skip
    return {
        "benchmark": "decode",
        "contexts": list(contexts),
        "config": {a: {"hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
                       "intermediate_size": c.intermediate_size,
                       "attention_layers": c.attention_layers(),
                       "params": jm.count_params(c)["total"]} for a, c in configs.items()},
        "results": results, "ratios": ratios, "targets": targets,
        "meta": {
            "command": "python " + shlex.join(["benchmarks/decode.py", *sys.argv[1:]]),
            "seconds": round(seconds, 1), "processor": cpu_name(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": threads,
            "python": platform.python_version(), "torch": torch.__version__,
            "jamba_min": jm.__version__, "dtype": "float32", "batch": 1, "steps": steps,
            "warmup": 2, "repeat": repeat, "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
    }  # fmt: skip


def target(value: float, op: str, goal: float) -> dict:
    met = value <= goal if op == "<=" else value >= goal
    return {"value": value, "goal": f"{op} {goal}", "met": met}


def summary(results: dict, contexts) -> tuple[dict, dict]:
    """Ratios of this run's numbers, and the speed targets they are checked against."""
    rate = {a: {r["context"]: r["tokens_per_s"] for r in rs} for a, rs in results.items()}
    held = {a: {r["context"]: r["cache_bytes"] for r in rs} for a, rs in results.items()}
    ratios, targets = {}, {}
    if "attention" in rate and "hybrid 1:7" in rate:
        for context in contexts:
            if context in (1024, 8192, 16384):
                ratios[f"hybrid / attention tokens/s at {context}"] = (
                    rate["hybrid 1:7"][context] / rate["attention"][context]
                )
    if {64, 16384} <= set(contexts) and "hybrid 1:7" in rate:
        hybrid = [rate["hybrid 1:7"][c] for c in contexts]
        spread = 1 - min(hybrid) / max(hybrid)
        ratios["hybrid spread 64 -> 16K (1 - slowest / fastest)"] = spread
        targets["hybrid spread 64 -> 16K"] = target(spread, "<=", 0.15)
        if "attention" in rate:
            speed = rate["hybrid 1:7"][16384] / rate["attention"][16384]
            cache = held["attention"][16384] / held["hybrid 1:7"][16384]
            ratios["attention / hybrid cache bytes at 16384"] = cache
            targets["hybrid / attention tokens/s at 16K"] = target(speed, ">=", 1.5)
            targets["attention / hybrid cache bytes at 16K"] = target(cache, ">=", 4)
    return ratios, targets


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help=f"contexts {QUICK} only")
    p.add_argument("--contexts", type=int, nargs="+", help=f"contexts (default {SWEEP})")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--steps", type=int, default=4, help="timed steps a round (default 4)")
    p.add_argument("--repeat", type=int, default=30, help="rounds (default 30)")
    p.add_argument("--hidden", type=int, default=256, help="hidden_size (default 256)")
    p.add_argument("--layers", type=int, default=8, help="num_hidden_layers (default 8)")
    p.add_argument("--results", action="store_true", help=f"also write {RESULTS}")
    args = p.parse_args(argv)
    contexts = tuple(args.contexts or (QUICK if args.quick else SWEEP))
    report = bench_decode(contexts, args.threads, args.steps, args.repeat, args.hidden, args.layers)
    write_json(report, args.json)
    write_json(report, str(RESULTS) if args.results else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import platform
import subprocess
import sys
import time

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
        "processor": _cpu_name(),
        "results": results,
        "checks": checks,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- the GPU report
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


# --------------------------------------------------------------------------- the MoE report
MOE_SHAPE = {"tokens": 4096, "hidden_size": 512, "intermediate_size": 1792, "num_experts": 16,
             "num_experts_per_tok": 2}  # fmt: skip


def bench_moe(threads: int, repeat: int) -> dict:
    """Sorted dispatch against the naive masked loop and transformers' JambaSparseMoeBlock."""
    import dataclasses
    import importlib.util

    import torch

    from jamba_min import JambaConfig
    from jamba_min.moe import JambaSparseMoeBlock

    torch.set_num_threads(threads)
    shape = MOE_SHAPE
    cfg = JambaConfig(
        vocab_size=256, hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"], num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=8, num_experts=shape["num_experts"],
        num_experts_per_tok=shape["num_experts_per_tok"],
    )  # fmt: skip
    torch.manual_seed(0)
    block = JambaSparseMoeBlock(cfg)
    x = torch.randn(1, shape["tokens"], shape["hidden_size"])
    impls = {"sorted": lambda: block(x)[0], "naive": lambda: block(x, naive=True)[0]}
    if importlib.util.find_spec("transformers") is not None:
        import transformers
        from transformers.models.jamba import modeling_jamba

        # transformers' two CPU-capable expert paths: its per-expert loop and grouped matmuls
        for name in ("eager", "grouped_mm"):
            hf_cfg = transformers.JambaConfig(**dataclasses.asdict(cfg))
            hf_cfg._experts_implementation = name
            theirs = modeling_jamba.JambaSparseMoeBlock(hf_cfg)
            theirs.load_state_dict(block.state_dict())
            impls[f"hf-{name}"] = lambda theirs=theirs: theirs(x)
    print(
        f"MoE block: {shape['tokens']} tokens, hidden {shape['hidden_size']}, intermediate "
        f"{shape['intermediate_size']}, {shape['num_experts']} experts, top "
        f"{shape['num_experts_per_tok']}, float32, {threads} threads, torch {torch.__version__}"
    )
    results = []
    for mode in ("fwd", "fwd+bwd"):

        def call(fn, mode=mode):
            if mode == "fwd":
                with torch.no_grad():
                    fn()
            else:
                fn().sum().backward()

        times = {impl: [] for impl in impls}
        for fn in impls.values():  # warm-up
            call(fn)
        for _ in range(repeat):  # interleaved, so that drift hits every implementation alike
            for impl, fn in impls.items():
                start = time.perf_counter()
                call(fn)
                times[impl].append(time.perf_counter() - start)
        for impl, ts in times.items():
            results.append({"impl": impl, "mode": mode, "seconds": min(ts)})
            print(f"  {mode:>8} {impl:>14} {min(ts) * 1e3:9.1f} ms", flush=True)
    table = {(r["impl"], r["mode"]): r["seconds"] for r in results}
    ratios = []
    for mode in ("fwd", "fwd+bwd"):
        for base in ("naive", "hf-eager", "hf-grouped_mm"):
            if (base, mode) in table:
                ratio = table[base, mode] / table["sorted", mode]
                ratios.append({"vs": base, "mode": mode, "speedup": ratio})
                goal = " (goal ≥ 1.5×)" if base == "naive" else ""
                print(f"  sorted dispatch vs {base:<14} {mode:>7}: {ratio:5.2f}×{goal}")
    return {"benchmark": "moe", "shape": shape, "threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "processor": _cpu_name(), "results": results,
            "ratios": ratios}  # fmt: skip


# --------------------------------------------------------------------------- the model report
MODEL_CONFIG = dict(
    vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=8,
    num_attention_heads=4, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2,
    mamba_d_state=16, attn_layer_period=8, attn_layer_offset=4, expert_layer_period=2,
    expert_layer_offset=1,
)  # fmt: skip


def bench_model(threads: int, repeat: int, skip_slow: bool = False) -> dict:
    """A tiny hybrid, same weights in both: a training step (forward, backward, AdamW) at batch
    8 × 256, and a 2048-token prefill plus 64 greedy tokens, against transformers' Jamba."""
    import dataclasses

    import torch
    import torch.nn.functional as F
    import transformers
    from transformers.utils import logging

    from jamba_min import JambaConfig, JambaForCausalLM

    logging.set_verbosity_error()
    torch.set_num_threads(threads)
    cfg = JambaConfig(**MODEL_CONFIG)
    torch.manual_seed(0)
    ours = JambaForCausalLM(cfg)

    def theirs(use_mambapy: bool):
        hf_cfg = transformers.JambaConfig(**dataclasses.asdict(cfg), use_mambapy=use_mambapy)
        model = transformers.JambaForCausalLM(hf_cfg)
        model.load_state_dict(ours.state_dict())
        return model

    g = torch.Generator().manual_seed(0)
    batch = torch.randint(0, cfg.vocab_size, (8, 257), generator=g)
    x, y = batch[:, :-1], batch[:, 1:]

    def step_fn(model, hf: bool):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            if hf:
                out = model(x, output_router_logits=True, use_cache=False)
                aux = cfg.router_aux_loss_coef * out.aux_loss
            else:
                out = model(x)
                aux = out.aux_loss
            loss = F.cross_entropy(out.logits.reshape(-1, cfg.vocab_size), y.reshape(-1)) + aux
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    def interleaved(fns: dict, rounds: int) -> dict:
        """Best time of each function over `rounds` rounds that run them in turn, so that a
        slow spell of a shared machine falls on all of them rather than on one."""
        times = {name: [] for name in fns}
        for _ in range(rounds):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        return {name: min(t) for name, t in times.items()}

    print(f"tiny hybrid {MODEL_CONFIG}, float32, {threads} threads, torch {torch.__version__}, "
          f"transformers {transformers.__version__}")  # fmt: skip
    results = {}
    impls = {"jamba_min": (ours, False), "transformers (use_mambapy)": (theirs(True), True)}
    if not skip_slow:
        impls["transformers (default CPU path)"] = (theirs(False), True)
    steps = {}
    for name, (model, hf) in impls.items():
        model.train()
        steps[name] = step_fn(model, hf)
        steps[name]()  # warm-up (and the first AdamW state)
    slow = steps.pop("transformers (default CPU path)", None)
    best = interleaved(steps, repeat)
    if slow is not None:
        best["transformers (default CPU path)"] = interleaved({"slow": slow}, 1)["slow"]
    for name, t in best.items():
        results[f"train step: {name}"] = t
        print(f"  training step (8 x 256), {name:<32} {t:8.3f} s", flush=True)

    prompt = torch.randint(0, cfg.vocab_size, (1, 2048), generator=g)
    hf_gen = theirs(False).eval()
    ours.eval()
    with torch.no_grad():
        gen = {
            "jamba_min": lambda: ours.generate(prompt, max_new_tokens=64),
            "transformers": lambda: hf_gen.generate(
                prompt, max_new_tokens=64, min_new_tokens=64, do_sample=False, pad_token_id=0
            ),
        }
        for fn in gen.values():
            fn()  # warm-up
        for name, t in interleaved(gen, repeat).items():
            results[f"generate: {name}"] = t
            print(f"  prefill 2048 + 64 greedy tokens, {name:<14} {t:8.3f} s", flush=True)
        # decode speed against context length: one token per step from the hybrid cache
        decoders = {}
        for context in (64, 8192):
            ids = torch.randint(0, cfg.vocab_size, (1, context), generator=g)
            out = ours(ids, return_cache=True)
            token = out.logits[:, -1:].argmax(-1)

            def decode(cache=out.cache, token=token, n=32):
                for _ in range(n):
                    ours(token, cache=cache)

            decode(n=3)
            decoders[context] = decode
        for context, t in interleaved(decoders, 2 * repeat).items():
            rate = 32 / t
            results[f"decode tokens/s at context {context}"] = rate
            print(f"  decode at context {context:>5}: {rate:7.1f} tokens/s", flush=True)

    ratios = {}
    ref = results["train step: jamba_min"]
    for name in ("transformers (default CPU path)", "transformers (use_mambapy)"):
        if f"train step: {name}" in results:
            ratios[f"train step vs {name}"] = results[f"train step: {name}"] / ref
    ratios["generate vs transformers"] = (
        results["generate: transformers"] / results["generate: jamba_min"]
    )
    ratios["decode 8192 / decode 64"] = (
        results["decode tokens/s at context 8192"] / results["decode tokens/s at context 64"]
    )
    goals = {
        "train step vs transformers (default CPU path)": 50,
        "train step vs transformers (use_mambapy)": 3,
        "generate vs transformers": 3,
    }
    for name, r in ratios.items():
        goal = f" (goal ≥ {goals[name]}×)" if name in goals else " (goal ≥ 0.85)"
        print(f"  {name:<46} {r:7.2f}{goal}")
    return {"benchmark": "model", "config": MODEL_CONFIG, "threads": threads,
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "processor": _cpu_name(),
            "results": results, "ratios": ratios}  # fmt: skip


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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--impls", nargs="+", default=list(SCAN_IMPLS), choices=SCAN_IMPLS)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.what == "triton":
        report = bench_triton(args.lengths or [1024, 4096, 16384])
    elif args.what == "moe":
        report = bench_moe(args.threads, args.repeat)
    elif args.what == "model":
        report = bench_model(args.threads, args.repeat, args.skip_slow)
    else:
        lengths = [256, 1024] if args.quick else (args.lengths or [256, 1024, 4096])
        report = bench_scan(lengths, args.threads, args.repeat, args.impls)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

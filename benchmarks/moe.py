"""Expert dispatch (chapter 7): sorted dispatch against the naive loop and transformers.

    python benchmarks/moe.py                          # 3 rounds
    python benchmarks/moe.py --repeat 1               # one round, the quickest
    python benchmarks/moe.py --json benchmarks/moe_cpu.json

Run from the repository root. The implementations run in turn, ``--repeat`` rounds, and each keeps
its best time (see _common.py); the speed-ups printed at the end are ratios of those times. The
baselines, transformers' two CPU-capable expert paths, run when transformers is installed.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # _common, and this checkout's jamba_min
from _common import cpu_name, interleaved, parser, write_json  # noqa: E402

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

        calls = {impl: lambda fn=fn: call(fn) for impl, fn in impls.items()}
        for fn in calls.values():  # warm-up
            fn()
        for impl, t in interleaved(calls, repeat).items():
            results.append({"impl": impl, "mode": mode, "seconds": t})
            print(f"  {mode:>8} {impl:>14} {t * 1e3:9.1f} ms", flush=True)
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
            "python": platform.python_version(), "processor": cpu_name(), "results": results,
            "ratios": ratios}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    args = p.parse_args(argv)
    write_json(bench_moe(args.threads, args.repeat), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

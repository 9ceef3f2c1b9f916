#!/usr/bin/env python3
"""Chapter 11's needle in a haystack: a hybrid and a Mamba-only model, trained alike, then asked
to retrieve one value from contexts up to 32 times longer than they were trained on.

    python experiments/needle.py                      # into jamba_min/results/needle.json
    python experiments/needle.py --quick --out /tmp/n.json   # a smoke run, 1 minute

Both models come from ``jamba_min.ablation.ablation_config`` (4 layers of width 64, dense MLPs,
the same parameter count; the hybrid's one attention layer in four has no positional encoding).
Each is trained with ``jamba_min.train.train`` on ``jamba_min.data.needle`` sequences of
``--train-len`` tokens with the needle at a random depth, then evaluated on a grid of context
lengths × needle depths (accuracy of the value at the last position). The results file records
the command, the machine, the versions and the time taken, and ships with the package so that
the chapter plots it in Colab too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import jamba_min as jm  # noqa: E402
from jamba_min import ablation as ab  # noqa: E402
from jamba_min import data, train  # noqa: E402

VOCAB = 64
ARCHS = ("hybrid 1:3", "mamba")


def build(arch: str, seed: int) -> jm.JambaForCausalLM:
    torch.manual_seed(seed)
    return jm.JambaForCausalLM(ab.ablation_config(arch, vocab_size=VOCAB, num_hidden_layers=4))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    p.add_argument(
        "--out", type=Path, default=HERE.parent / "jamba_min" / "results" / "needle.json"
    )
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--train-len", type=int, default=64)
    p.add_argument("--lengths", type=int, nargs="*", default=[64, 128, 256, 512, 1024, 2048])
    p.add_argument("--depths", type=float, nargs="*", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--eval-examples", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: a shared machine)")
    args = p.parse_args()
    if args.quick:
        args.steps, args.lengths, args.eval_examples = 20, [64, 128], 16
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    results: dict = {"accuracy": {}, "train_loss": {}, "seconds": {}}
    x, y = data.needle(20000, args.train_len, VOCAB, seed=args.seed)
    for arch in ARCHS:
        model = build(arch, args.seed)
        hist = train.train(model, (x, y), steps=args.steps, batch_size=args.batch, lr=args.lr,
                           seed=args.seed, progress=False)  # fmt: skip
        grid = []
        for L in args.lengths:
            row = []
            for d in args.depths:
                held = data.needle(args.eval_examples, L, VOCAB, depth=d, seed=1000 + L)
                row.append(train.evaluate(model, held, batch_size=16)["accuracy"])
            grid.append(row)
            print(f"{arch:10s} length {L:5d}: " + " ".join(f"{a:.2f}" for a in row), flush=True)
        results["accuracy"][arch] = grid
        results["train_loss"][arch] = hist.loss[:: max(1, args.steps // 100)]
        results["seconds"][arch] = round(hist.seconds, 1)
    results["meta"] = {
        "command": "python " + " ".join(sys.argv),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "threads": args.threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "jamba_min": jm.__version__,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "params": {
            a: jm.count_params(ab.ablation_config(a, vocab_size=VOCAB, num_hidden_layers=4))[
                "total"
            ]
            for a in ARCHS
        },
    }
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out} in {results['meta']['seconds']} s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Chapter 10's sweep: attention-only, Mamba-only and hybrid models of equal size, trained alike.

    python experiments/hybrid_vs_pure.py   # the full sweep, into jamba_min/results/
    python experiments/hybrid_vs_pure.py --quick --out /tmp/q.json   # a smoke run, 1 minute

Four architectures (``jamba_min.ablation.SCHEDULES``: attention-only with learned positions,
hybrids 1:3 and 1:7 and Mamba-only, none with positions), 8 layers of width 64, dense MLPs,
about 467K parameters each, trained with ``jamba_min.train.train`` on:

1. MQAR (multi-query associative recall): one model per architecture and seed on a mixture of
   sequences with 2, 4 and 8 key-value pairs; accuracy measured for each number of pairs;
2. the label-format task (few-shot, label words new in every sequence): accuracy on the shots
   whose class appeared before;
3. induction: the hybrid 1:7 trained on ``induction_heads``, then the attention mass its heads
   put on the token after the previous occurrence, on repeated random sequences;
4. activations: the hybrid 1:7 on the corpus with and without the RMSNorms on Δ, B and C, the
   largest Mamba output during training.

Every run of a task uses the same steps (800 for MQAR, 400 for the others), batch (16) and peak
learning rate; seeds 0, 1, 2. The results file records the command, the hardware, the versions
and the time taken. Sized to run in about an hour on a 2-core laptop CPU. The results file lives
in the package (``jamba_min.results.load("hybrid_vs_pure")``) so that the chapter finds it in
Colab too.
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

VOCAB, SEQ_LEN, PAIRS = 64, 64, (2, 4, 8)


def build(arch: str, seed: int, **overrides) -> jm.JambaForCausalLM:
    torch.manual_seed(seed)
    model = jm.JambaForCausalLM(ab.ablation_config(arch, **{"vocab_size": VOCAB, **overrides}))
    return ab.add_learned_positions(model, SEQ_LEN) if arch == "attention" else model


def mqar_sets(n: int, seed: int) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    return {p: data.mqar(n, SEQ_LEN, p, VOCAB, seed=seed * 10 + p) for p in PAIRS}


def run_mqar(arch: str, seed: int, args) -> dict:
    sets = mqar_sets(args.examples // 3, seed)
    x = torch.cat([s[0] for s in sets.values()])
    y = torch.cat([s[1] for s in sets.values()])
    model = build(arch, seed)
    hist = train.train(model, (x, y), steps=args.steps_mqar, batch_size=args.batch, lr=args.lr,
                       seed=seed, progress=False)  # fmt: skip
    held = mqar_sets(256, 1000 + seed)
    acc = {p: train.evaluate(model, s)["accuracy"] for p, s in held.items()}
    return {"final_loss": hist.loss[-1], "accuracy": acc, "seconds": hist.seconds}


def run_label_format(arch: str, seed: int, args) -> dict:
    shots = SEQ_LEN // 6
    x, y = data.label_format(args.examples, shots, VOCAB, seed=seed)
    model = build(arch, seed)
    hist = train.train(model, (x, y), steps=args.steps, batch_size=args.batch, lr=args.lr,
                       seed=seed, progress=False)  # fmt: skip
    held = data.label_format(512, shots, VOCAB, seed=1000 + seed)
    ev = train.evaluate(model, held)
    # format: the most likely token is one of this sequence's label words at all
    with torch.no_grad():
        pred = model(held[0]).logits.argmax(-1)
    scored = held[1] != data.IGNORE_INDEX
    words = held[0][:, 4::6]  # every shot's label token
    in_words = (pred[..., None] == words[:, None, :]).any(-1)
    return {"final_loss": hist.loss[-1], "accuracy": ev["accuracy"],
            "format": in_words[scored].float().mean().item(), "seconds": hist.seconds}  # fmt: skip


def run_induction(seed: int, args) -> dict:
    x, y = data.induction_heads(args.examples, SEQ_LEN, VOCAB, seed=seed)
    model = build("hybrid 1:7", seed)
    probe = ab.repeated_sequences(64, SEQ_LEN // 2, VOCAB, seed=500 + seed)
    before = ab.induction_score(ab.attention_maps(model, probe), SEQ_LEN // 2)
    hist = train.train(model, (x, y), steps=args.steps, batch_size=args.batch, lr=args.lr,
                       seed=seed, progress=False)  # fmt: skip
    after = ab.induction_score(ab.attention_maps(model, probe), SEQ_LEN // 2)
    held = data.induction_heads(256, SEQ_LEN, VOCAB, seed=1000 + seed)
    return {
        "accuracy": train.evaluate(model, held)["accuracy"],
        "score_before": {str(k): v.tolist() for k, v in before.items()},
        "score_after": {str(k): v.tolist() for k, v in after.items()},
        "uniform": (1 / torch.arange(SEQ_LEN // 2, SEQ_LEN).float()).mean().item(),
        "seconds": hist.seconds,
    }


def run_activations(norms: bool, seed: int, args) -> dict:
    text = data.corpus(seed=seed)
    x, y = data.text_windows(text, args.examples, SEQ_LEN, seed=seed)
    model = build("hybrid 1:7", seed, vocab_size=256)
    if not norms:
        ab.drop_inner_norms(model)
    probe = x[:64]
    peaks = [max(ab.mamba_activations(model, probe).values())]
    every = max(1, args.steps // 8)

    def measure(step: int, history) -> None:
        if step % every == 0:
            peaks.append(max(ab.mamba_activations(model, probe).values()))

    train.train(model, (x, y), steps=args.steps, batch_size=args.batch, lr=args.lr_act,
                seed=seed, progress=False, callback=measure)  # fmt: skip
    return {"norms": norms, "peak_by_eighth": peaks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one seed: a smoke test")
    p.add_argument(
        "--out", type=Path, default=HERE.parent / "jamba_min" / "results" / "hybrid_vs_pure.json"
    )
    p.add_argument("--steps-mqar", type=int, default=800)
    p.add_argument("--steps", type=int, default=400, help="steps of the other runs")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--examples", type=int, default=6000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--lr-act", type=float, default=1e-2)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    args = p.parse_args()
    if args.quick:
        args.steps_mqar, args.steps, args.examples, args.seeds = 20, 20, 600, [0]
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    results: dict = {"mqar": {}, "label_format": {}, "induction": [], "activations": []}
    for arch in ab.SCHEDULES:
        for task, run in (("mqar", run_mqar), ("label_format", run_label_format)):
            results[task][arch] = []
            for seed in args.seeds:
                r = run(arch, seed, args)
                results[task][arch].append(r)
                print(f"{task:12s} {arch:10s} seed {seed}: {json.dumps(r)[:150]}", flush=True)
    for seed in args.seeds:
        results["induction"].append(run_induction(seed, args))
        print(f"induction seed {seed}: {json.dumps(results['induction'][-1])[:150]}", flush=True)
    for norms in (True, False):
        results["activations"].append(run_activations(norms, args.seeds[0], args))
        print(f"activations norms={norms}: {results['activations'][-1]}", flush=True)
    results["meta"] = {
        "command": "python " + " ".join(sys.argv),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "jamba_min": jm.__version__,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "params": {
            a: jm.count_params(ab.ablation_config(a, vocab_size=VOCAB))["total"]
            for a in ab.SCHEDULES
        },
    }
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out} in {results['meta']['seconds']} s")


if __name__ == "__main__":
    main()

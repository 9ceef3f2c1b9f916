"""The tiny hybrid (chapter 8): a training step and generation against transformers.

    python benchmarks/model.py                        # 10 rounds; a few minutes
    python benchmarks/model.py --skip-slow --repeat 1 # without the one-minute baseline
    python benchmarks/model.py --json benchmarks/model_cpu.json

Run from the repository root; needs transformers. The implementations compared run in turn,
``--repeat`` rounds, and each keeps its best time (see _common.py); the ratios printed at the end
are ratios of those times.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # _common, and this checkout's jamba_min
from _common import cpu_name, interleaved, parser, write_json  # noqa: E402

MODEL_CONFIG = dict(
    vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=8,
    num_attention_heads=4, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2,
    mamba_d_state=16, attn_layer_period=8, attn_layer_offset=4, expert_layer_period=2,
    expert_layer_offset=1,
)  # fmt: skip


def bench_model(threads: int, repeat: int, skip_slow: bool = False) -> dict:
    """A tiny hybrid, same weights in both: a training step (forward, backward, AdamW) at batch
    8 × 256, and a 2048-token prefill plus 64 greedy tokens, against transformers' Jamba.

    The implementations compared run in turn, ``repeat`` rounds, and each keeps its best time
    (transformers' default CPU path, a minute per step, runs once)."""
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
    slow = {name: steps.pop(name) for name in list(steps) if name.endswith("CPU path)")}
    best = interleaved(steps, repeat) | interleaved(slow, 1)  # a minute a step: once
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
            "python": platform.python_version(), "processor": cpu_name(),
            "results": results, "ratios": ratios}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--repeat", type=int, default=10, help="rounds (default 10)")
    p.add_argument(
        "--skip-slow",
        action="store_true",
        help="skip the training step of transformers' default CPU path (a minute a step)",
    )
    args = p.parse_args(argv)
    write_json(bench_model(args.threads, args.repeat, args.skip_slow), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

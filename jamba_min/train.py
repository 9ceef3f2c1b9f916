"""Training a tiny Jamba (chapters 9-11): one loop, on one process or data-parallel.

:func:`train` runs AdamW with a linear warm-up and a cosine decay, clips the gradient norm, adds
the routers' load-balancing loss, evaluates now and then, and writes checkpoints it can resume
from. Started under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1 in the environment) the
same call trains data-parallel with ``DistributedDataParallel`` (gloo on CPUs, NCCL on GPUs):
every process draws the same global batch and takes its own slice of it, and the loss is
normalised by the global batch's count of scored positions, so N processes take the steps one
process would take on the whole batch. (The routers' auxiliary loss is the exception: each
process computes it on its own slice, as data-parallel MoE training does.)
``python -m jamba_min.train`` is a command line around it.

A checkpoint is a folder ``step-NNNNNN`` holding ``save_pretrained``'s files plus
``trainer_state.safetensors`` (AdamW's moments and the random state) and ``trainer_state.json``
(step and history); a file ``latest`` names the newest complete one, and is replaced only once
that folder is complete, so an interrupted save leaves the previous checkpoint in charge.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from . import checkpoint_io as files
from . import data as tasks
from .config import JambaConfig, is_int, is_real
from .data import IGNORE_INDEX

LATEST, STATE, STATE_JSON = "latest", "trainer_state.safetensors", "trainer_state.json"


@dataclass
class History:
    """What :func:`train` measured: one entry per step in the first lists, one per evaluation in
    ``eval_step``/``eval_loss``/``eval_accuracy`` (accuracy: the share of scored positions whose
    most likely token is the label)."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    aux_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def lr_at(step: int, steps: int, lr: float, warmup: int, min_lr: float) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up over ``warmup`` steps from
    ``lr / warmup`` to ``lr``, then a cosine from ``lr`` down to ``min_lr`` at the last step."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - 1 - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def decays(name: str, param: Tensor) -> bool:
    """Whether AdamW's weight decay applies to a parameter: to matrices (embeddings,
    projections, experts, the convolution), whose scale is free; not to vectors (norm gains,
    biases, ``D``) nor to ``A_log``, which sets each state's time scale, as in mamba_ssm."""
    return param.dim() >= 2 and not name.endswith("A_log")


def token_loss(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Summed cross-entropy over scored positions and their number. ``logits`` ``(b, L, V)``,
    ``labels`` ``(b, L)`` aligned with the positions (no shift), ``-100`` = not scored."""
    loss = F.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return loss, (labels != IGNORE_INDEX).sum()


@torch.no_grad()
def evaluate(model: nn.Module, data: tuple[Tensor, Tensor], batch_size: int = 64) -> dict:
    """Mean loss and accuracy over the scored positions of ``data`` = ``(input_ids, labels)``."""
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    x, y = _check_data(model, data, "eval_data")
    device = next(model.parameters()).device
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
        logits = model(xb).logits
        loss, n = token_loss(logits, yb)
        scored = yb != IGNORE_INDEX
        total += loss.item()
        correct += (logits.argmax(-1)[scored] == yb[scored]).sum().item()
        count += n.item()
    model.train(was_training)
    if not count:
        raise ValueError("eval_data: no position is scored (every label is -100)")
    return {"loss": total / count, "accuracy": correct / count}


def _check_data(model: nn.Module, data: object, name: str) -> tuple[Tensor, Tensor]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(f"{name} must be a pair (input_ids, labels) of tensors, got {type(data)}")
    x, y = data
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.dim() != 2:
        raise ValueError(f"{name}: input_ids and labels must be tensors of shape (N, L)")
    if y.shape != x.shape:
        raise ValueError(
            f"{name}: labels must have the shape of input_ids {tuple(x.shape)}, got "
            f"{tuple(y.shape)}"
        )
    if x.is_floating_point() or y.is_floating_point():
        raise ValueError(f"{name}: input_ids and labels must be integer tensors")
    vocab = model.config.vocab_size
    if x.numel() and (x.min() < 0 or x.max() >= vocab):
        raise ValueError(
            f"{name}: token ids lie in [{x.min().item()}, {x.max().item()}], but the model's "
            f"vocab_size is {vocab}: build the model with vocab_size > {x.max().item()}"
        )
    bad = (y != IGNORE_INDEX) & ((y < 0) | (y >= vocab))
    if bad.any():
        raise ValueError(f"{name}: labels must be -100 or token ids in [0, {vocab})")
    return x.long(), y.long()


def _distributed() -> tuple[int, int, torch.device | None]:
    """(rank, world size, device) under torchrun, starting the process group; (0, 1, None)
    otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, None
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def train(
    model: nn.Module,
    data: tuple[Tensor, Tensor],
    *,
    steps: int,
    batch_size: int,
    lr: float = 1e-3,
    warmup: int | None = None,
    min_lr: float | None = None,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    clip: float = 1.0,
    eval_data: tuple[Tensor, Tensor] | None = None,
    eval_every: int | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    seed: int = 0,
    progress: bool | None = None,
    callback: Callable[[int, History], None] | None = None,
) -> History:
    """Train ``model`` in place on ``data`` = ``(input_ids, labels)``, each ``(N, L)``.

    Step ``s`` uses the ``batch_size`` examples that a generator seeded with ``(seed, s)`` draws
    from the ``N`` (with replacement), so a run is reproducible and a resumed run draws what the
    uninterrupted one would have. The loss is the mean cross-entropy over the batch's scored
    positions, plus the model's ``aux_loss`` when it has MoE layers. ``warmup`` defaults to 10% of
    ``steps``, ``min_lr`` to ``lr / 10``. Every ``eval_every`` steps (and after the last) the model
    is evaluated on ``eval_data``; every ``checkpoint_every`` steps (and after the last) a
    checkpoint goes to ``checkpoint_dir``, and ``resume=True`` continues from the newest one
    there. ``progress`` shows a tqdm bar (default: on, unless the environment sets ``CI``).
    ``callback(step, history)``, if given, runs after every step (``step`` counts from 1), for
    measurements of one's own.

    Under torchrun, ``batch_size`` is the global batch, split evenly across processes.
    """
    x, y = _check_data(model, data, "data")
    for name, value, low in (("steps", steps, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if not is_int(value) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    for name, value in (("lr", lr), ("clip", clip), ("weight_decay", weight_decay)):
        if not is_real(value) or not (value > 0 or (name == "weight_decay" and value == 0)):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    warmup = max(1, steps // 10) if warmup is None else warmup
    min_lr = lr / 10 if min_lr is None else min_lr
    if not is_int(warmup) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0 (steps), got {warmup!r}")
    if not is_real(min_lr) or not 0 <= min_lr <= lr:
        raise ValueError(f"min_lr must be a number in [0, lr = {lr}], got {min_lr!r}")
    for name, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if value is not None and (not is_int(value) or value < 1):
            raise ValueError(f"{name} must be an int >= 1 or None, got {value!r}")
    if eval_every is not None and eval_data is None:
        raise ValueError("eval_every needs eval_data")
    if (checkpoint_every is not None or resume) and checkpoint_dir is None:
        raise ValueError("checkpoint_every and resume need checkpoint_dir")
    rank, world, device = _distributed()
    if batch_size % world:
        raise ValueError(f"batch_size = {batch_size} must divide evenly across {world} processes")
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device

    decay = [p for n, p in model.named_parameters() if decays(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not decays(n, p)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
        betas=betas,
    )
    history, start = History(), 0
    if resume:  # restores the random state too
        start, history = _load(Path(checkpoint_dir), model, opt)
    else:
        torch.manual_seed(seed)  # dropout, if the config has any
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    model.train()

    from tqdm.auto import tqdm

    show = (not os.environ.get("CI")) if progress is None else progress
    bar = tqdm(
        range(start, steps),
        initial=start,
        total=steps,
        disable=not show or rank > 0,
        mininterval=1.0,  # a stored notebook keeps every redraw
    )
    t0 = time.perf_counter() - history.seconds
    for step in bar:
        pick = torch.randint(0, len(x), (batch_size,), generator=_step_generator(seed, step))
        mine = pick[rank * batch_size // world : (rank + 1) * batch_size // world]
        xb, yb = x[mine].to(device), y[mine].to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup, min_lr)
        out = net(xb)
        loss_sum, count = token_loss(out.logits, yb)
        total_count = count.clone()
        if world > 1:  # the mean over the global batch's scored positions, whatever the split
            dist.all_reduce(total_count)
        loss = loss_sum * world / total_count.clamp(min=1)  # DDP averages gradients over world
        aux = out.aux_loss
        (loss + aux if aux is not None else loss).backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

        mean = loss.detach() / world
        if world > 1:
            dist.all_reduce(mean)
        history.step.append(step + 1)
        history.loss.append(mean.item())
        history.aux_loss.append(aux.item() if aux is not None else 0.0)
        history.lr.append(opt.param_groups[0]["lr"])
        history.grad_norm.append(grad_norm.item())
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
        last = step + 1 == steps
        if eval_data is not None and (last or (eval_every and (step + 1) % eval_every == 0)):
            result = evaluate(model, eval_data)
            history.eval_step.append(step + 1)
            history.eval_loss.append(result["loss"])
            history.eval_accuracy.append(result["accuracy"])
        if checkpoint_dir is not None and (
            last or (checkpoint_every and (step + 1) % checkpoint_every == 0)
        ):
            history.seconds = time.perf_counter() - t0
            if rank == 0:
                _save(Path(checkpoint_dir), model, opt, step + 1, history)
            if world > 1:
                dist.barrier()
        if callback is not None:
            callback(step + 1, history)
    history.seconds = time.perf_counter() - t0
    return history


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _opt_tensors(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Tensor]:
    names = {p: n for n, p in model.named_parameters()}
    out = {}
    for p, state in opt.state.items():
        for key, value in state.items():
            out[f"{names[p]}.{key}"] = value.detach().cpu().reshape(value.shape).contiguous()
    out["rng"] = torch.get_rng_state()
    return out


def _save(root: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int, hist) -> None:
    """Write checkpoint ``root/step-{step}``, then point ``root/latest`` at it."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    tmp = root / f".{name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        model.save_pretrained(tmp)
        save_file(_opt_tensors(model, opt), str(tmp / STATE))
        (tmp / STATE_JSON).write_text(json.dumps({"step": step, "history": asdict(hist)}))
        shutil.rmtree(root / name, ignore_errors=True)
        os.replace(tmp, root / name)
        pointer = root / f".{LATEST}.{uuid.uuid4().hex}.tmp"
        pointer.write_text(name + "\n")
        os.replace(pointer, root / LATEST)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in sorted(root.glob("step-*"))[:-2]:  # keep the newest two
        shutil.rmtree(old, ignore_errors=True)


def _load(root: Path, model: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, History]:
    """Restore weights, AdamW's moments and the random state from ``root``'s newest checkpoint."""
    from safetensors.torch import load_file

    if not (root / LATEST).is_file():
        raise ValueError(f"resume: {root} holds no checkpoint (no '{LATEST}' file)")
    name = (root / LATEST).read_text().strip()
    folder = files.file_in(root, f"{name}/{files.CONFIG}", "resume").parent
    saved = type(model).from_pretrained(folder)
    theirs, ours = saved.config.architecture(), model.config.architecture()
    if theirs != ours:
        diff = {k: (v, ours[k]) for k, v in theirs.items() if ours[k] != v}
        raise ValueError(
            f"resume: the checkpoint in {folder} is of another config (checkpoint vs model: {diff})"
        )
    model.load_state_dict(saved.state_dict())
    meta = json.loads(files.file_in(folder, STATE_JSON, "resume").read_text())
    tensors = load_file(str(files.file_in(folder, STATE, "resume")))
    torch.set_rng_state(tensors.pop("rng"))
    params = dict(model.named_parameters())
    for key, value in tensors.items():
        pname, _, slot = key.rpartition(".")
        if pname not in params:
            raise ValueError(f"resume: {folder / STATE} holds {key!r}, not a parameter's state")
        opt.state[params[pname]][slot] = value.to(params[pname].device)
    return int(meta["step"]), History(**meta["history"])


def tiny_config(**overrides) -> JambaConfig:
    """A Jamba small enough to train on a laptop CPU in minutes: bytes in and out (vocabulary
    256), 4 layers of width 64, attention at layer 2 (a:m = 1:3), 4 experts (top 2) on the odd
    layers. Any ``JambaConfig`` field can be overridden."""
    fields = dict(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, attn_layer_period=4, attn_layer_offset=2,
        expert_layer_period=2, expert_layer_offset=1, num_experts=4, num_experts_per_tok=2,
        mamba_d_state=16, mamba_expand=2, mamba_dt_rank=8,
    )  # fmt: skip
    return JambaConfig(**{**fields, **overrides})


TASKS = ("corpus", "mqar", "selective_copying", "induction_heads", "label_format")


def task_data(task: str, num_examples: int, seq_len: int, vocab_size: int, seed: int):
    """``(input_ids, labels)`` of one of :data:`TASKS` with the command line's defaults."""
    if task == "corpus":
        return tasks.text_windows(tasks.corpus(seed=seed), num_examples, seq_len, seed=seed)
    if task == "mqar":
        return tasks.mqar(num_examples, seq_len, max(1, seq_len // 8), vocab_size, seed=seed)
    if task == "selective_copying":
        return tasks.selective_copying(num_examples, seq_len, seq_len // 8, vocab_size, seed=seed)
    if task == "induction_heads":
        return tasks.induction_heads(num_examples, seq_len, vocab_size, seed=seed)
    if task == "label_format":
        return tasks.label_format(num_examples, max(2, seq_len // 6), vocab_size, seed=seed)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def main(argv: list[str] | None = None) -> History:
    """``python -m jamba_min.train [...]``; the same command runs under ``torchrun``."""
    p = argparse.ArgumentParser(
        prog="python -m jamba_min.train",
        description="Train a tiny Jamba (tiny_config) on a generated task. Under "
        "torchrun --nproc_per_node=N the same command trains data-parallel.",
    )
    p.add_argument("--task", choices=TASKS, default="corpus")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=JSON",
        help="JambaConfig fields over tiny_config, e.g. --set num_hidden_layers=8",
    )
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32, help="the global batch")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--examples", type=int, default=4096)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="checkpoint folder (written every --checkpoint-every steps)")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set takes FIELD=JSON, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            p.error(f"--set {key}: {value!r} is not a JSON value")
    from .model import JambaForCausalLM

    cfg = tiny_config(**overrides)
    torch.manual_seed(args.seed)
    model = JambaForCausalLM(cfg)
    data = task_data(args.task, args.examples, args.seq_len, cfg.vocab_size, args.seed)
    held_out = task_data(args.task, 256, args.seq_len, cfg.vocab_size, args.seed + 1)
    history = train(
        model, data, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        eval_data=held_out, checkpoint_dir=args.out, checkpoint_every=args.checkpoint_every,
        resume=args.resume, seed=args.seed, progress=False if args.quiet else None,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({
            "task": args.task, "steps": args.steps, "loss": round(history.loss[-1], 4),
            "eval_loss": round(history.eval_loss[-1], 4),
            "eval_accuracy": round(history.eval_accuracy[-1], 4),
            "seconds": round(history.seconds, 1),
            "processes": int(os.environ.get("WORLD_SIZE", "1")),
        }))  # fmt: skip
    return history


if __name__ == "__main__":
    main()

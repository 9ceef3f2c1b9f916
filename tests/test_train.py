"""jamba_min.train: the loop learns, resumes exactly, refuses bad input, and trains data-parallel
with the same result as one process on the same global batch."""

import itertools
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import jamba_min as jm
from jamba_min import data, train

ROOT = Path(__file__).resolve().parents[1]


def tiny(**kw):
    """attention + Mamba + MoE in three layers, small enough for a few steps in a test."""
    fields = dict(num_hidden_layers=3, hidden_size=32, intermediate_size=48, vocab_size=32)
    fields.update(attn_layer_period=3, attn_layer_offset=1, mamba_dt_rank=4, mamba_d_state=8)
    return train.tiny_config(**{**fields, **kw})


def model_of(cfg, seed=0):
    torch.manual_seed(seed)
    return jm.JambaForCausalLM(cfg)


def test_schedule_warms_up_then_decays_to_min_lr():
    lrs = [train.lr_at(s, 100, 1e-3, 10, 1e-4) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[-1] == pytest.approx(1e-4)


def test_training_fits_a_small_set():
    """60 steps drive the loss on 16 fixed MQAR sequences from chance (ln 16 for 16 values) to
    almost nothing, and every scored value is then predicted: the loop really optimises."""
    model = model_of(tiny())
    x, y = data.mqar(16, 32, 4, 32, seed=0)
    before = train.evaluate(model, (x, y))
    hist = train.train(
        model, (x, y), steps=60, batch_size=16, lr=1e-2, eval_data=(x, y), progress=False
    )
    assert before["accuracy"] < 0.2 and hist.loss[0] > 2.5  # measured: 3.49
    assert hist.loss[-1] < 0.1 and hist.eval_accuracy == [1.0]  # measured: 0.02
    assert len(hist.step) == len(hist.lr) == len(hist.grad_norm) == 60


def test_resume_continues_exactly(tmp_path):
    """Resuming from step 4 of 8 gives the weights and losses of the uninterrupted run."""
    cfg = tiny()
    x, y = data.mqar(256, 32, 4, 32, seed=0)
    kw = dict(steps=8, batch_size=8, seed=3, progress=False)
    straight = model_of(cfg)
    h1 = train.train(straight, (x, y), **kw, checkpoint_dir=tmp_path, checkpoint_every=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-000004", "step-000008"]
    (tmp_path / "latest").write_text("step-000004\n")  # as if the run had stopped at step 4
    resumed = model_of(cfg, seed=99)  # other initial weights: everything must come from the file
    h2 = train.train(resumed, (x, y), **kw, checkpoint_dir=tmp_path, resume=True)
    assert h2.step == h1.step and h2.loss == h1.loss
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_resume_refuses_another_config(tmp_path):
    x, y = data.mqar(64, 32, 4, 32)
    train.train(
        model_of(tiny()), (x, y), steps=1, batch_size=4, checkpoint_dir=tmp_path, progress=False
    )
    with pytest.raises(ValueError, match=r"another config.*hidden_size"):
        train.train(
            model_of(tiny(hidden_size=48)),
            (x, y),
            steps=2,
            batch_size=4,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )
    with pytest.raises(ValueError, match="holds no checkpoint"):
        train.train(
            model_of(tiny()),
            (x, y),
            steps=2,
            batch_size=4,
            checkpoint_dir=tmp_path / "empty",
            resume=True,
            progress=False,
        )


def test_checkpoint_is_a_loadable_model(tmp_path):
    model = model_of(tiny())
    x, y = data.mqar(64, 32, 4, 32)
    train.train(model, (x, y), steps=2, batch_size=4, checkpoint_dir=tmp_path, progress=False)
    loaded = jm.from_pretrained(tmp_path / "step-000002")
    assert torch.equal(loaded(x[:2]).logits, model.eval()(x[:2]).logits)
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda x, y: (x, y[:, :-1]), "labels must have the shape of input_ids"),
        (lambda x, y: (x + 40, y), r"ids lie in \[40, 47\].*vocab_size is 32: .* > 47"),
        (lambda x, y: (x.float(), y), "integer tensors"),
        (lambda x, y: (x,), "a pair \\(input_ids, labels\\)"),
        (lambda x, y: (x, torch.full_like(y, 99)), "labels must be -100 or token ids"),
    ],
)
def test_bad_data_is_named(change, match):
    x, y = data.mqar(8, 32, 2, 8)
    with pytest.raises(ValueError, match=match):
        train.train(model_of(tiny()), change(x, y), steps=1, batch_size=2, progress=False)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"steps": 0}, "steps must be an int >= 1"),
        ({"batch_size": 2.0}, "batch_size must be an int"),
        ({"lr": -1}, "lr must be a positive number"),
        ({"eval_every": 2}, "eval_every needs eval_data"),
        ({"resume": True}, "need checkpoint_dir"),
        ({"warmup": -1}, "warmup must be an int >= 0"),
        ({"min_lr": 1.0}, r"min_lr must be a number in \[0, lr"),
        ({"checkpoint_every": 0, "checkpoint_dir": "x"}, "checkpoint_every must be an int >= 1"),
    ],
)
def test_bad_arguments_are_named(kw, match):
    x, y = data.mqar(8, 32, 2, 32)
    args = {"steps": 1, "batch_size": 2, "progress": False, **kw}
    with pytest.raises(ValueError, match=match):
        train.train(model_of(tiny()), (x, y), **args)


# --- data-parallel ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    cfg = tiny(router_aux_loss_coef=0.0)
    model = model_of(cfg)
    x, y = data.mqar(256, 32, 4, 32, seed=0)
    train.train(model, (x, y), steps=4, batch_size=8, progress=False)
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_processes_equal_one_on_the_global_batch(tmp_path):
    """Two gloo replicas end with identical weights, equal (to float32 rounding) to one process
    that trains on the whole global batch. (The router's aux loss is off here: each replica
    computes it on its own half, as data-parallel MoE training does, which is not the full
    batch's.)"""
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    single = model_of(tiny(router_aux_loss_coef=0.0))
    x, y = data.mqar(256, 32, 4, 32, seed=0)
    train.train(single, (x, y), steps=4, batch_size=8, progress=False)
    start = model_of(tiny(router_aux_loss_coef=0.0)).state_dict()
    for name, ref in single.state_dict().items():
        assert torch.equal(r0[name], r1[name]), f"replicas differ in {name}"
        torch.testing.assert_close(r0[name], ref, rtol=1e-5, atol=1e-6, msg=name)
    moved = [n for n, v in start.items() if not torch.equal(v, r0[n])]
    assert len(moved) > len(start) // 2  # the test compares trained weights, not the initial ones


def test_torchrun_runs_the_command_line(tmp_path):
    """The documented command: torchrun --nproc_per_node=2 -m jamba_min.train ..."""
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        "-m",
        "jamba_min.train",
        "--task",
        "mqar",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--seq-len",
        "32",
        "--examples",
        "64",
        "--set",
        "num_hidden_layers=2",
        "hidden_size=32",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"processes": 2' in done.stdout
    assert (tmp_path / "step-000003" / "model.safetensors").is_file()

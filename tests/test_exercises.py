"""The exercise graders accept correct answers and reject wrong ones with a helpful message."""

import pytest
import torch

import jamba_min as jm
from jamba_min import exercises as ex


def scan_loop(a, x, chunk):
    h, out = torch.zeros_like(x[0]), []
    for t in range(len(a)):
        h = a[t] * h + x[t]
        out.append(h)
    return torch.stack(out)


def ema(x, alpha):
    y, out = torch.zeros(()), []
    for v in x:
        y = alpha * y + (1 - alpha) * v
        out.append(y)
    return torch.stack(out)


def zoh(A, B, delta):
    dA = delta[:, None] * A
    return torch.exp(dA), torch.expm1(dA) / A * B


def conv_loop(x, w, bias):
    K = w.shape[1]
    padded = torch.nn.functional.pad(x, (K - 1, 0))
    return bias[:, None] + sum(w[:, k, None] * padded[..., k : k + x.shape[-1]] for k in range(K))


def ssm_step(h, u, delta, A, B, C, D):
    h = torch.exp(delta[..., None] * A) * h + (delta * u)[..., None] * B[:, None]
    return (h * C[:, None]).sum(-1) + D * u, h


def lb_loss(logits, n, k):
    from jamba_min.moe import load_balancing_loss

    return load_balancing_loss(logits, n, k)


def lr_schedule(steps, lr, warmup, min_lr):
    return [jm.train.lr_at(s, steps, lr, warmup, min_lr) for s in range(steps)]


def token_loss_mean(logits, labels):  # the mean where the sum is asked for
    loss, count = jm.train.token_loss(logits, labels)
    return loss / count.clamp(min=1), count


def align_labels(ids, targets):
    labels = torch.full_like(ids, -100)
    labels[:, :-1] = torch.where(targets[:, 1:], ids[:, 1:], -100)
    return labels


RIGHT_AND_WRONG = {
    "check_repeat_kv": (
        lambda kv, g: kv.repeat_interleave(g, dim=1),
        lambda kv, g: kv.repeat(1, g, 1, 1),
    ),
    "check_causal_attention": (
        lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v),
    ),
    "check_route": (
        lambda logits, k: torch.topk(torch.softmax(logits, -1), k, dim=-1),
        lambda logits, k: torch.topk(torch.softmax(torch.topk(logits, k).values, -1), k, dim=-1),
    ),
    "check_load_balancing_loss": (lb_loss, lambda logits, n, k: lb_loss(logits, n, k) / k),
    "check_causal_conv1d": (conv_loop, lambda x, w, bias: conv_loop(x, w.flip(1), bias)),
    "check_ssm_step": (
        ssm_step,
        lambda h, u, dl, A, B, C, D: (ssm_step(h, u, dl, A, B, C, D)[0] - D * u, h),
    ),
    "check_mamba_mixer_params": (jm.mamba_mixer_params, lambda cfg: jm.mamba_mixer_params(cfg) - 1),
    "check_active_params": (
        lambda cfg: jm.count_params(cfg)["active"],
        lambda cfg: jm.count_params(cfg)["total"],
    ),
    "check_kv_cache_bytes": (jm.kv_cache_bytes, lambda c, s, b, n: jm.kv_cache_bytes(c, s, b, 2)),
    "check_discretize": (
        zoh,
        lambda A, B, delta: (torch.exp(delta[:, None] * A), delta[:, None] * B),
    ),
    "check_ssm_kernel": (
        lambda Ab, Bb, C, L: torch.stack([(C * Ab**k * Bb).sum() for k in range(L)]),
        lambda Ab, Bb, C, L: torch.stack([(C * Ab ** (k + 1) * Bb).sum() for k in range(L)]),
    ),
    "check_ema": (ema, lambda x, alpha: ema(x, 1 - alpha)),
    "check_selective_scan": (
        lambda u, delta, A, B, C, D: jm.selective_scan(u, delta, A, B, C, D),
        lambda u, delta, A, B, C, D: jm.selective_scan(u, delta, A, B, C),
    ),
    "check_combine": (
        lambda p, q: (p[0] * q[0], q[0] * p[1] + q[1]),
        lambda p, q: (p[0] * q[0], p[0] * q[1] + p[1]),
    ),
    "check_chunked_scan": (scan_loop, lambda a, x, chunk: torch.cumsum(x, 0)),
    "check_cumsum": (lambda x: torch.cumsum(x, -1), lambda x: torch.cumsum(x, -1) - x),
    "check_linear_recurrence": (
        lambda a, x: scan_loop(a.t(), x.t(), 1).t(),
        lambda a, x: torch.cumsum(x, -1),
    ),
    "check_lr_schedule": (lr_schedule, lambda n, lr, w, m: lr_schedule(n, lr, w + 1, m)),
    "check_token_loss": (jm.train.token_loss, token_loss_mean),
    "check_align_labels": (
        align_labels,
        lambda ids, targets: align_labels(ids, targets.roll(1, 1)),
    ),
}


def test_every_grader_is_covered():
    assert set(RIGHT_AND_WRONG) == {n for n in ex.__all__ if n.startswith("check_")}


@pytest.mark.parametrize("name", RIGHT_AND_WRONG)
def test_grader_accepts_a_right_answer(name, capsys):
    getattr(ex, name)(RIGHT_AND_WRONG[name][0])
    assert capsys.readouterr().out.startswith(f"✓ {name}: ")


@pytest.mark.parametrize("name", RIGHT_AND_WRONG)
def test_grader_rejects_a_wrong_answer(name):
    with pytest.raises(AssertionError, match=f"{name}: for "):
        getattr(ex, name)(RIGHT_AND_WRONG[name][1])

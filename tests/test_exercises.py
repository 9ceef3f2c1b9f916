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


def max_context(cfg, budget, batch, wb, cb, *, state=True, strict=False, per_sequence=False):
    """Chapter 0's longest context; the keywords make the typical wrong answers."""
    fixed = jm.count_params(cfg)["total"] * wb
    if state:
        fixed += jm.mamba_state_bytes(cfg, 1 if per_sequence else batch, cb)
    per_token = jm.kv_cache_bytes(cfg, 1, 1 if per_sequence else batch, cb)
    if fixed > budget:
        return None
    if per_token == 0:
        return float("inf")
    return (budget - fixed - strict) // per_token  # strict: "<" where "≤" is asked


def scan_quadratic(u, delta, A, B, C, D, *, own_step=False, causal=True):
    """Chapter 2's scan without a loop over time; the keywords make the typical wrong answers."""
    S = torch.cumsum(delta, -1)[..., None] * A[:, None, :]  # (b, d, L, N)
    seg = S[:, :, :, None, :] - S[:, :, None, :, :]  # (b, d, t, s, N)
    if own_step:  # the decay of token s also counts its own step
        seg = seg + (delta[..., None] * A[:, None, :])[:, :, None]
    if causal:
        mask = torch.ones(u.shape[-1], u.shape[-1], dtype=torch.bool).tril()[:, :, None]
        seg = seg.masked_fill(~mask, -float("inf"))
    y = torch.einsum("bnt,bdtsn,bns,bds->bdt", C, torch.exp(seg), B, delta * u)
    return y + D[:, None] * u


def scan_from_state(u, delta, A, B, C, D, h0, *, ignore=False, shift=False, decay_last=True):
    """Chapter 2's scan from a state, by linearity; the keywords make the typical wrong answers."""
    y, h = jm.selective_scan(u, delta, A, B, C, D, return_last_state=True)
    if ignore:  # the initial state left out
        return y, h
    total = torch.cumsum(delta, -1) - (delta if shift else 0)  # shift: one step short
    decay = torch.exp(total[..., None] * A[:, None, :])  # (b, d, L, N)
    y = y + torch.einsum("bdln,bdn,bnl->bdl", decay, h0, C)
    return y, h + (decay[:, :, -1] if decay_last else 1) * h0


def conv_loop(x, w, bias):
    K = w.shape[1]
    padded = torch.nn.functional.pad(x, (K - 1, 0))
    return bias[:, None] + sum(w[:, k, None] * padded[..., k : k + x.shape[-1]] for k in range(K))


def chunked_fixup(a, x, chunk, *, exclusive=False, carry=True):
    """Chapter 3's fix-up chunked scan; the keywords make the typical wrong answers."""
    L, rest = a.shape[0], a.shape[1:]
    c = -(-L // chunk)
    a = torch.cat([a, a.new_ones(c * chunk - L, *rest)]).view(c, chunk, *rest)
    x = torch.cat([x, x.new_zeros(c * chunk - L, *rest)]).view(c, chunk, *rest)
    local, h = torch.empty_like(x), torch.zeros_like(x[:, 0])
    for j in range(chunk):
        h = a[:, j] * h + x[:, j]
        local[:, j] = h
    decays = torch.cumprod(a, dim=1)
    entering = [torch.zeros_like(x[0, 0])]
    for i in range(c - 1):
        entering.append((decays[i, -1] * entering[i] + local[i, -1]) * carry)
    if exclusive:  # ∏_{s < t}: one step short
        decays = torch.cat([torch.ones_like(decays[:, :1]), decays[:, :-1]], dim=1)
    return (local + decays * torch.stack(entering)[:, None]).reshape(c * chunk, *rest)[:L]


def matrix_scan(M, x, *, swapped=False):
    """Hillis-Steele on matrix steps; swapped: the product in the wrong order."""

    def op(first, then):
        (M1, x1), (M2, x2) = first, then
        return (M1 @ M2 if swapped else M2 @ M1), (M2 @ x1[..., None])[..., 0] + x2

    xs, shift = (M, x), 1
    while shift < len(x):
        later = op(tuple(v[:-shift] for v in xs), tuple(v[shift:] for v in xs))
        xs = tuple(torch.cat([v[:shift], w]) for v, w in zip(xs, later, strict=True))
        shift *= 2
    return xs[1].clone()


def reverse_recurrence(a, x, *, shift=1):
    """h_t = a_{t+shift} h_{t+1} + x_t from the end; shift=0 is the off-by-one."""
    L, h, out = x.shape[1], torch.zeros(x.shape[0]), torch.empty_like(x)
    for t in reversed(range(L)):
        a_t = a[:, t + shift] if t + shift < L else torch.zeros(x.shape[0])
        h = a_t * h + x[:, t]
        out[:, t] = h
    return out


def steps_from_state(m, x, state):
    ys = []
    for t in range(x.shape[1]):
        y, state = m.step(x[:, t], state)
        ys.append(y)
    return torch.stack(ys, dim=1), state


def chunk_from_state(m, x, state, *, whole_window=False, gate_all=True):
    """Chapter 5's chunk from a state, in parallel; the keywords make typical wrong answers."""
    T, K = x.shape[1], m.d_conv
    u, z = m.in_proj(x).transpose(1, 2).chunk(2, dim=1)
    window = torch.cat([state.conv if whole_window else state.conv[..., 1:], u], dim=-1)
    w = m.conv1d.weight[:, 0]
    u = m.conv1d.bias[:, None] + sum(w[:, i, None] * window[..., i : i + T] for i in range(K))
    u = torch.nn.functional.silu(u)
    dt, B, C = m.x_proj(u.transpose(1, 2)).split([m.dt_rank, m.d_state, m.d_state], dim=-1)
    dt, B, C = m.dt_layernorm(dt), m.b_layernorm(B), m.c_layernorm(C)
    delta = torch.nn.functional.softplus(m.dt_proj(dt)).transpose(1, 2)
    A = -torch.exp(m.A_log)
    B, C = B.transpose(1, 2), C.transpose(1, 2)
    y, h = jm.selective_scan(u, delta, A, B, C, D=m.D, return_last_state=True)
    carried = torch.exp(delta.cumsum(-1)[..., None] * A[:, None]) * state.ssm[:, :, None]
    extra = torch.einsum("bdtn,bnt->bdt", carried, C)
    gate = torch.nn.functional.silu(z)
    y = (y + extra) * gate if gate_all else y * gate + extra
    return m.out_proj(y.transpose(1, 2)), jm.MambaState(window[..., -K:], h + carried[:, :, -1])


def lr_schedule(steps, lr, warmup, min_lr):
    return [jm.train.lr_at(s, steps, lr, warmup, min_lr) for s in range(steps)]


def token_loss_mean(logits, labels):  # the mean where the sum is asked for
    loss, count = jm.train.token_loss(logits, labels)
    return loss / count.clamp(min=1), count


def align_labels(ids, targets):
    labels = torch.full_like(ids, -100)
    labels[:, :-1] = torch.where(targets[:, 1:], ids[:, 1:], -100)
    return labels


def induction_weight(w, x, q, *, first=False, shift=1, per_row=False):
    """Chapter 10's measure; the keywords make the typical wrong answers."""
    b, t = q.nonzero(as_tuple=True)
    steps = torch.arange(x.shape[1])
    earlier = (x[b] == x[b, t][:, None]) & (steps < t[:, None])
    s = earlier.float().argmax(1) if first else torch.where(earlier, steps, -1).amax(1)
    picked = w[b, :, t, s + shift]  # (queries, H)
    if per_row:  # the mean of each row's mean
        return torch.stack([picked[b == i].mean(0) for i in b.unique()]).mean(0)
    return picked.mean(0)


def cached_attention(q, k, v, *, tile=False, offset=True, diagonal=0, scale=True):
    """Chapter 6's attention of L new tokens; the keywords make the typical wrong answers."""
    H, G, L, T = q.shape[1], k.shape[1], q.shape[2], k.shape[2]
    share = (lambda t: t.repeat(1, H // G, 1, 1)) if tile else (
        lambda t: t.repeat_interleave(H // G, dim=1))  # fmt: skip
    scores = q @ share(k).transpose(-2, -1) * (q.shape[-1] ** -0.5 if scale else 1.0)
    seen = torch.ones(L, T, dtype=torch.bool).tril((T - L if offset else 0) + diagonal)
    return torch.softmax(scores.masked_fill(~seen, float("-inf")), dim=-1) @ share(v)


def route_with_capacity(logits, k, capacity, *, renormalize=False, token_major=False,
                        strict=False):  # fmt: skip
    """Chapter 7's routing with a capacity; the keywords make the typical wrong answers."""
    probs = torch.softmax(logits, -1, dtype=torch.promote_types(logits.dtype, torch.float32))
    weights, experts = torch.topk(probs, k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(-1, keepdim=True)
    order = [(t, s) for t in range(len(logits)) for s in range(k)]  # token by token
    if not token_major:  # every first choice, then every second choice, ...
        order.sort(key=lambda ts: ts[1])
    taken, keep = [0] * logits.shape[-1], torch.zeros_like(weights, dtype=torch.bool)
    for t, s in order:
        e = int(experts[t, s])
        if taken[e] < capacity - strict:
            taken[e], keep[t, s] = taken[e] + 1, True
    return (weights * keep).to(logits.dtype), experts


def greedy_decode(model, prompt, steps, *, first=False, again=False, no_cache=False):
    """Chapter 8's decoding loop; the keywords make the typical wrong answers."""
    with torch.no_grad():
        if no_cache:  # the whole sequence at every step
            seq = prompt
            for _ in range(steps):
                seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], 1)
            return seq
        out = model(prompt, return_cache=True)
        token = out.logits[:, 0 if first else -1].argmax(-1, keepdim=True)
        if again:  # the prompt's last token fed a second time
            token = model(prompt[:, -1:], cache=out.cache).logits[:, -1].argmax(-1, keepdim=True)
        new = [token]
        for _ in range(steps - 1):
            token = model(token, cache=out.cache).logits[:, -1].argmax(-1, keepdim=True)
            new.append(token)
    return torch.cat([prompt, *new], dim=1)


def layer_cache_bytes(config, T, batch, dtype, *, state_dtype=None, conv=True):
    """Chapter 8's bytes per layer; the keywords make the typical wrong answers."""
    size = dtype.itemsize
    state_size = (state_dtype or torch.promote_types(dtype, torch.float32)).itemsize
    kv = 2 * batch * config.num_key_value_heads * T * config.head_dim * size
    window = batch * config.mamba_d_inner * config.mamba_d_conv * size * conv
    state = batch * config.mamba_d_inner * config.mamba_d_state * state_size
    return [
        kv if config.is_attention_layer(i) else window + state
        for i in range(config.num_hidden_layers)
    ]


def left_pad(prompts, pad_id, *, side="left", mask_dtype=torch.long):
    """Chapter 11's padding; the keywords make the typical wrong answers."""
    L = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), L), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), L, dtype=mask_dtype)
    for i, p in enumerate(prompts):
        where = slice(L - len(p), L) if side == "left" else slice(0, len(p))
        ids[i, where], mask[i, where] = p, 1
    return ids, mask


RIGHT_AND_WRONG = {
    "check_cached_attention": (
        cached_attention,
        lambda q, k, v: cached_attention(q, k, v, offset=False),  # the mask starts at key 0
    ),
    "check_route_with_capacity": (
        route_with_capacity,
        lambda logits, k, c: route_with_capacity(logits, k, c, renormalize=True),
    ),
    "check_greedy_decode": (
        greedy_decode,
        lambda model, prompt, steps: greedy_decode(model, prompt, steps, again=True),
    ),
    "check_layer_cache_bytes": (
        layer_cache_bytes,
        lambda c, T, b, dtype: layer_cache_bytes(c, T, b, dtype, state_dtype=dtype),
    ),
    "check_causal_conv1d": (conv_loop, lambda x, w, bias: conv_loop(x, w.flip(1), bias)),
    "check_forward_from_state": (
        steps_from_state,
        lambda m, x, state: steps_from_state(m, x, m.empty_state(x.shape[0])),
    ),
    "check_active_params": (
        lambda cfg: jm.count_params(cfg)["active"],
        lambda cfg: jm.count_params(cfg)["total"],
    ),
    "check_max_context": (max_context, lambda *a: max_context(*a, state=False)),
    "check_discretize": (
        zoh,
        lambda A, B, delta: (torch.exp(delta[:, None] * A), delta[:, None] * B),
    ),
    "check_ema": (ema, lambda x, alpha: ema(x, 1 - alpha)),
    "check_selective_scan": (
        scan_quadratic,
        lambda u, delta, A, B, C, D: jm.selective_scan(u, delta, A, B, C),
    ),
    "check_scan_from_state": (scan_from_state, lambda *a: scan_from_state(*a, ignore=True)),
    "check_matrix_scan": (matrix_scan, lambda M, x: matrix_scan(M, x, swapped=True)),
    "check_chunked_scan": (scan_loop, lambda a, x, chunk: torch.cumsum(x, 0)),
    "check_cumsum": (lambda x: torch.cumsum(x, -1), lambda x: torch.cumsum(x, -1) - x),
    "check_reverse_recurrence": (
        reverse_recurrence,
        lambda a, x: reverse_recurrence(a, x, shift=0),
    ),
    "check_lr_schedule": (lr_schedule, lambda n, lr, w, m: lr_schedule(n, lr, w + 1, m)),
    "check_token_loss": (jm.train.token_loss, token_loss_mean),
    "check_align_labels": (
        align_labels,
        lambda ids, targets: align_labels(ids, targets.roll(1, 1)),
    ),
    "check_left_pad": (left_pad, lambda prompts, pad: left_pad(prompts, pad, side="right")),
    "check_induction_mass": (
        induction_weight,
        lambda w, x, q: induction_weight(w, x, q, first=True),
    ),
}


# graders whose answer is a value (a number, a shape, a written explanation), not a function
VALUES = {
    "check_prediction": ((2, 3), (3, 2), (torch.Size([2, 3]),)),
    "check_first_token_answer": (
        "A token is predicted by the position before it; no position comes before the first.",
        "The first token is a special start symbol.",
        (),
    ),
    "check_padding_answer": (
        "At a padded position the convolution still outputs silu of its bias, so the scan "
        "would write it into the state h and the real tokens after would differ from alone.",
        "Padding tokens are ignored by the attention mask.",
        (),
    ),
    "check_recall_answer": (
        "The value at s + 1 says nothing about the key by its content; it must first hold which "
        "token came before it, and the Mamba layers' convolution writes that in.",
        "Attention is better at recall because it can see the whole context.",
        (),
    ),
    "check_position_answer": (
        "Attention alone sees a set: shuffling the earlier tokens changes nothing. In Jamba it "
        "reads the outputs of Mamba layers, whose recurrence depends on the order.",
        "Positional encodings are expensive, so Jamba leaves them out.",
        (),
    ),
    "check_imbalance_answer": (
        "Every copy of a byte goes to the same experts, the space is far more frequent than the "
        "rest, and tiny differences decide the top 2.",
        "The router is confident about a few experts, so they get most tokens.",
        (),
    ),
    "check_kv_cache_answer": (
        "The cache holds the keys and values of the attention layers only; Mixtral's experts are "
        "feed-forward layers that keep nothing. Use fewer attention layers, Mamba in their place.",
        "Mixtral is a mixture of experts, so only 12.9B parameters are active per token.",
        (),
    ),
    "check_euler_answer": (
        "With a fixed Δ the two differ by a constant factor per state, which a learned B or C "
        "absorbs; with a token-dependent Δ the factor changes at every step.",
        "Euler is cheaper to compute than the exponential.",
        (),
    ),
    "check_norms_answer": (
        "Without them a large token makes u, B and Δ large, so Δ B u grows like the cube of its "
        "scale and a large Δ wipes the state. With them B and C keep a root mean square of 1 and "
        "Δ stays bounded whatever the input. Jamba added them after loss spikes in training.",
        "RMSNorm makes the layer faster and uses fewer parameters than LayerNorm.",
        (),
    ),
}


@pytest.mark.parametrize(
    "grader, wrong",
    [
        ("check_active_params", lambda cfg: jm.count_params(cfg)["active"]
         + cfg.tie_word_embeddings * cfg.vocab_size * cfg.hidden_size),
        ("check_max_context", lambda *a: max_context(*a, strict=True)),
        ("check_max_context", lambda *a: max_context(*a, per_sequence=True)),
        ("check_discretize", lambda A, B, delta: (torch.exp(delta[:, None] * A),
         (torch.exp(delta[:, None] * A) - 1) / A * B)),
        ("check_discretize", lambda A, B, delta: (torch.exp(delta * A),
         torch.expm1(delta * A) / A * B)),
        ("check_selective_scan", lambda *a: scan_quadratic(*a, own_step=True)),
        ("check_selective_scan", lambda *a: scan_quadratic(*a, causal=False)),
        ("check_selective_scan", lambda u, dl, A, B, C, D: jm.selective_scan(
         u, dl, A, B, C, D, delta_softplus=True)),
        ("check_scan_from_state", lambda *a: scan_from_state(*a, shift=True)),
        ("check_scan_from_state", lambda *a: scan_from_state(*a, decay_last=False)),
    ],
    ids=["tied lm_head counted", "budget strictly under", "batch forgotten",
         "exp - 1 for tiny steps", "delta on the wrong axis", "own step in the decay",
         "no causal mask", "softplus applied", "decay one step short", "last state not decayed"],
)  # fmt: skip
def test_chapter_0_to_2_graders_reject_the_other_typical_mistakes(grader, wrong):
    with pytest.raises(AssertionError, match=f"{grader}: for "):
        getattr(ex, grader)(wrong)


@pytest.mark.parametrize(
    "wrong", [dict(shift=0), dict(per_row=True)], ids=["the key, not the token after it", "per row"]
)
def test_induction_grader_rejects_the_other_typical_mistakes(wrong):
    with pytest.raises(AssertionError, match="check_induction_mass: for "):
        ex.check_induction_mass(lambda w, x, q: induction_weight(w, x, q, **wrong))


@pytest.mark.parametrize(
    "grader, wrong",
    [
        ("check_cached_attention", lambda q, k, v: cached_attention(q, k, v, diagonal=-1)),
        ("check_cached_attention", lambda q, k, v: cached_attention(q, k, v, diagonal=1)),
        ("check_cached_attention", lambda q, k, v: cached_attention(q, k, v, tile=True)),
        ("check_cached_attention", lambda q, k, v: cached_attention(q, k, v, scale=False)),
        ("check_route_with_capacity", lambda logits, k, c: (torch.softmax(
         torch.topk(logits, k).values, -1), torch.topk(logits, k).indices)),
        ("check_route_with_capacity", lambda logits, k, c: route_with_capacity(logits, k, c,
         token_major=True)),
        ("check_route_with_capacity", lambda logits, k, c: route_with_capacity(logits, k, c,
         strict=True)),
        ("check_route_with_capacity", lambda logits, k, c: torch.topk(torch.softmax(
         logits.double(), -1), k)),
        ("check_greedy_decode", lambda m, p, s: greedy_decode(m, p, s, first=True)),
        ("check_greedy_decode", lambda m, p, s: greedy_decode(m, p, s, no_cache=True)),
        ("check_greedy_decode", lambda m, p, s: greedy_decode(m, p, s)[:, p.shape[1]:]),
        ("check_layer_cache_bytes", lambda c, T, b, dt: layer_cache_bytes(c, T, b, torch.float32)),
        ("check_layer_cache_bytes", lambda c, T, b, dt: layer_cache_bytes(c, T, b, dt,
         conv=False)),
    ],
    ids=["causal mask one key short (hides itself)", "causal mask one key long (sees the next)",
         "key-value heads tiled", "no scale", "softmax over the top-K logits (Mixtral)",
         "token by token, not first choices first", "capacity one short", "nothing dropped",
         "first position's logits",
         "the whole sequence at every step", "new tokens only", "float32 whatever the dtype",
         "convolution window forgotten"],
)  # fmt: skip
def test_chapter_6_to_8_graders_reject_the_other_typical_mistakes(grader, wrong):
    with pytest.raises(AssertionError, match=f"{grader}: for "):
        getattr(ex, grader)(wrong)


@pytest.mark.parametrize(
    "wrong",
    [dict(exclusive=True), dict(carry=False)],
    ids=["product one step short", "no state carried across chunks"],
)
def test_chunked_scan_grader_rejects_the_other_typical_mistakes(wrong):
    with pytest.raises(AssertionError, match="check_chunked_scan: for "):
        ex.check_chunked_scan(lambda a, x, chunk: chunked_fixup(a, x, chunk, **wrong))


def test_reverse_recurrence_grader_rejects_a_forward_scan():
    with pytest.raises(AssertionError, match="check_reverse_recurrence: for "):
        ex.check_reverse_recurrence(lambda a, x: scan_loop(a.t(), x.t(), 1).t())


@pytest.mark.parametrize(
    "wrong",
    [dict(), dict(whole_window=True), dict(gate_all=False)],
    ids=["right", "the whole window before the chunk", "the carried share not gated"],
)
def test_forward_from_state_grader_on_parallel_answers(wrong, capsys):
    def answer(m, x, state):
        return chunk_from_state(m, x, state, **wrong)

    if not wrong:
        ex.check_forward_from_state(answer)
        assert capsys.readouterr().out.startswith("✓ check_forward_from_state: ")
        return
    with pytest.raises(AssertionError, match="check_forward_from_state: for "):
        ex.check_forward_from_state(answer)


@pytest.mark.parametrize(
    "wrong",
    [dict(mask_dtype=torch.bool), lambda prompts, pad: left_pad(prompts, 0)],
    ids=["a bool mask", "padded with 0 whatever pad_id says"],
)
def test_left_pad_grader_rejects_the_other_typical_mistakes(wrong):
    answer = (
        (lambda prompts, pad: left_pad(prompts, pad, **wrong)) if isinstance(wrong, dict) else wrong
    )
    with pytest.raises(AssertionError, match="check_left_pad: for "):
        ex.check_left_pad(answer)


def test_every_grader_is_covered():
    graders = {n for n in ex.__all__ if n.startswith("check_")}
    assert set(RIGHT_AND_WRONG) | set(VALUES) == graders
    assert not set(RIGHT_AND_WRONG) & set(VALUES)
    assert all(getattr(getattr(ex, n), "is_grader", False) for n in graders), "use @grader"


@pytest.mark.parametrize("name", RIGHT_AND_WRONG)
def test_grader_accepts_a_right_answer(name, capsys):
    getattr(ex, name)(RIGHT_AND_WRONG[name][0])
    assert capsys.readouterr().out.startswith(f"✓ {name}: ")


@pytest.mark.parametrize("name", RIGHT_AND_WRONG)
def test_grader_rejects_a_wrong_answer(name):
    with pytest.raises(AssertionError, match=f"{name}: for "):
        getattr(ex, name)(RIGHT_AND_WRONG[name][1])


@pytest.mark.parametrize("name", VALUES)
def test_value_grader_accepts_a_right_answer_and_rejects_a_wrong_one(name, capsys):
    right, wrong, args = VALUES[name]
    getattr(ex, name)(right, *args)
    assert capsys.readouterr().out.startswith(f"✓ {name}: ")
    with pytest.raises(AssertionError, match=f"^{name}: "):
        getattr(ex, name)(wrong, *args)


def stub(*args):
    raise NotImplementedError  # your code here


@pytest.mark.parametrize("name", RIGHT_AND_WRONG)
def test_grader_says_not_yet_implemented_for_the_stub(name, capsys):
    assert getattr(ex, name)(stub) is None  # no exception: the notebook goes on
    assert capsys.readouterr().out == (f"… {name}: not yet implemented (fill in stub)\n")


@pytest.mark.parametrize("name", [*RIGHT_AND_WRONG, *VALUES])
@pytest.mark.parametrize("blank", [None, "", "  \n"])
def test_grader_says_not_yet_answered_for_an_empty_answer(name, blank, capsys):
    args = VALUES[name][2] if name in VALUES else ()
    assert getattr(ex, name)(blank, *args) is None
    assert capsys.readouterr().out.startswith(f"… {name}: not yet answered")


def test_not_implemented_inside_the_package_is_not_mistaken_for_a_stub():
    @ex._common.grader
    def check_broken(fn):
        fn(1)
        raise NotImplementedError("a grader bug")

    with pytest.raises(NotImplementedError, match="a grader bug"):
        check_broken(lambda x: x)


def in_place(fn):
    """A right answer that also scribbles on its first tensor argument."""

    def answer(*args):
        out = fn(*args)
        flat = [b for a in args for b in (a if isinstance(a, list) else [a])]
        first = next(a for a in flat if isinstance(a, torch.Tensor))
        first.add_(1.0) if first.dtype.is_floating_point else first.add_(1)
        return out

    return answer


@pytest.mark.parametrize(
    "name", [n for n in RIGHT_AND_WRONG if n not in ("check_active_params",
             "check_max_context", "check_layer_cache_bytes",
             "check_lr_schedule")]
)  # fmt: skip
def test_grader_rejects_an_answer_that_changes_its_input(name):
    with pytest.raises(AssertionError, match=f"{name}: for .* changed its input"):
        getattr(ex, name)(in_place(RIGHT_AND_WRONG[name][0]))


def test_input_guard_sees_tensors_inside_lists_and_tuples():
    def answer(logits, n, k):
        loss = jm.moe.load_balancing_loss(logits, n, k)
        logits[0].mul_(2)
        return loss

    with pytest.raises(AssertionError, match="changed its input 'logits' in place"):
        ex._common.call("check_demo", "2 layers", answer, [torch.randn(4, 3)] * 2, 3, 1)

    def combine(p, q):
        out = (p[0] * q[0], q[0] * p[1] + q[1])
        q[1].zero_()
        return out

    with pytest.raises(AssertionError, match="changed its input 'q' in place"):
        steps = [(torch.rand(3), torch.randn(3)) for _ in range(2)]
        ex._common.call("check_demo", "two steps", combine, *steps)


def test_dtype_kind_is_named():
    with pytest.raises(AssertionError, match=r"should have an? integer dtype"):
        ex.check_align_labels(lambda ids, targets: align_labels(ids, targets).float())


def test_compare_gradients_names_the_input_whose_gradient_is_wrong():
    from jamba_min.exercises._common import compare_gradients

    x = torch.randn(5, dtype=torch.float64)
    y = torch.randn(5, dtype=torch.float64)
    compare_gradients("check_demo", "5 numbers", lambda x, y: x * y, lambda x, y: x * y, (x, y))

    def wrong(x, y):  # the gradient of y is cut
        return x * y.detach()

    with pytest.raises(AssertionError, match=r"check_demo: for 5 numbers, no gradient .* 'y'"):
        compare_gradients("check_demo", "5 numbers", wrong, lambda x, y: x * y, (x, y))

    def off(x, y):  # right values, wrong gradient with respect to x
        return x.detach() * y + (x - x.detach()) * 2 * y

    with pytest.raises(AssertionError, match="gradient with respect to 'x' is off"):
        compare_gradients("check_demo", "5 numbers", off, lambda x, y: x * y, (x, y))

"""Left padding: a padded batch gives every row what its prompt gives alone, and transformers'.

The padding must leave no trace: attention never attends to it, and the Mamba layers reach each
row's first real token with the conv window and SSM state a sequence starts with (zeros).
"""

import pytest
import torch
from configs import BASE, SCHEDULES

import jamba_min as jm

HYBRID, ATTENTION, MAMBA = "jamba-like", "pure attention, dense", "pure Mamba"
LENGTHS = [5, 9, 12]  # the longest row has no padding
PAD = 0


def prompts(lengths=LENGTHS, seed=0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, BASE["vocab_size"], (n,), generator=g) for n in lengths]


def left_pad(rows: list[torch.Tensor], pad=PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` ``(b, L)``: each row right-aligned; ``pad`` an id, or a
    tensor of ids ``(b, L)`` to take the padding from."""
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), pad) if isinstance(pad, int) else pad.clone()
    mask = torch.zeros(len(rows), L, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, L - len(r) :] = r
        mask[i, L - len(r) :] = 1
    return ids, mask


def use_eager_attention(model: jm.JambaForCausalLM) -> None:
    for layer in model.model.layers:
        if layer.is_attention:
            layer.self_attn.impl = "eager"


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("name", SCHEDULES)
def test_padded_batch_equals_each_prompt_alone(model_pair, name, impl):
    ours, _ = model_pair(SCHEDULES[name])
    if impl == "eager":
        use_eager_attention(ours)
    rows = prompts()
    ids, mask = left_pad(rows)
    with torch.no_grad():
        logits = ours(ids, attention_mask=mask).logits
        assert torch.isfinite(logits).all()  # padding positions too: no empty softmax row
        for i, row in enumerate(rows):
            alone = ours(row[None]).logits[0]
            torch.testing.assert_close(logits[i, -len(row) :], alone, rtol=0, atol=1e-5)


def test_projection_and_conv_biases_do_not_leak(model_pair):
    # in_proj's bias makes the conv's input non-zero at the padding unless it is zeroed after
    # in_proj; the conv's bias makes its output non-zero there unless that is zeroed too.
    # transformers (5.x) zeroes the mixer's input before in_proj, so with mamba_proj_bias its
    # padded rows differ from the same prompts alone (by ~0.2 here; Jamba's published config
    # has no such bias): we compare with transformers on each prompt alone, which is right
    ours, theirs = model_pair(
        {**SCHEDULES[HYBRID], "mamba_proj_bias": True, "mamba_conv_bias": True}
    )
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # biases well away from 0
        ours.load_state_dict(theirs.state_dict())
    rows = prompts([2, 7, 12])  # one row shorter than the conv window
    ids, mask = left_pad(rows)
    with torch.no_grad():
        logits = ours(ids, attention_mask=mask).logits
        for i, row in enumerate(rows):
            alone = theirs(row[None], use_cache=False).logits[0]
            torch.testing.assert_close(logits[i, -len(row) :], alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", [HYBRID, ATTENTION, MAMBA, "GQA 4:1, MoE on even layers, top-3"])
def test_padded_generation_equals_each_prompt_alone(model_pair, name):
    ours, _ = model_pair(SCHEDULES[name])
    ours.double()  # so that no near-tie can flip an argmax
    rows = prompts()
    ids, mask = left_pad(rows)
    out = ours.generate(ids, attention_mask=mask, max_new_tokens=10)
    assert out.shape == (3, 12 + 10) and torch.equal(out[:, :12], ids)  # padding kept in front
    for i, row in enumerate(rows):
        alone = ours.generate(row[None], max_new_tokens=10)[0]
        assert torch.equal(out[i, 12:], alone[len(row) :])


@pytest.mark.parametrize("name", [HYBRID, MAMBA])
def test_prefill_state_equals_each_prompt_alone(model_pair, name):
    """The caches themselves: Mamba conv windows and SSM states, and the real tokens' keys."""
    ours, _ = model_pair(SCHEDULES[name])
    ours.double()
    rows = prompts([2, 9, 12])  # the first shorter than the conv window (d_conv = 4)
    ids, mask = left_pad(rows)
    with torch.no_grad():
        batch = ours(ids, attention_mask=mask, return_cache=True).cache
        for i, row in enumerate(rows):
            alone = ours(row[None], return_cache=True).cache
            for s, a in zip(batch.layers, alone.layers, strict=True):
                if isinstance(s, jm.MambaState):
                    torch.testing.assert_close(s.conv[i], a.conv[0], rtol=0, atol=1e-12)
                    torch.testing.assert_close(s.ssm[i], a.ssm[0], rtol=0, atol=1e-12)
                else:
                    keys = s.keys[i][:, -len(row) :]
                    torch.testing.assert_close(keys, a.keys[0], rtol=0, atol=1e-12)
                    assert s.key_mask()[i].tolist() == mask[i].bool().tolist()


def test_prefill_then_steps_equal_the_full_padded_forward(model_pair):
    ours, _ = model_pair(SCHEDULES[HYBRID])
    ours.double()
    rows = prompts([3, 6, 8])
    full_ids, full_mask = left_pad([torch.cat([r, torch.arange(5)]) for r in rows])
    with torch.no_grad():
        full = ours(full_ids, attention_mask=full_mask).logits
        out = ours(full_ids[:, :-5], attention_mask=full_mask[:, :-5], return_cache=True)
        logits = [out.logits]
        for t in range(5, 0, -1):
            out = ours(full_ids[:, -t:][:, :1], cache=out.cache)  # no mask: the cache has it
            logits.append(out.logits)
    real = full_mask.bool()
    torch.testing.assert_close(torch.cat(logits, 1)[real], full[real], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", [HYBRID, MAMBA])
def test_the_padding_tokens_do_not_matter(model_pair, name):
    # whatever sits at the padding (random ids, a different id per position) changes nothing
    ours, _ = model_pair(SCHEDULES[name])
    rows = prompts()
    g = torch.Generator().manual_seed(7)
    ids_a, mask = left_pad(rows, torch.randint(0, BASE["vocab_size"], (3, 12), generator=g))
    ids_b, _ = left_pad(rows, torch.randint(0, BASE["vocab_size"], (3, 12), generator=g))
    assert not torch.equal(ids_a, ids_b)
    real = mask.bool()
    with torch.no_grad():
        a, b = ours(ids_a, attention_mask=mask).logits, ours(ids_b, attention_mask=mask).logits
    torch.testing.assert_close(a[real], b[real], rtol=0, atol=1e-6)
    gen_a = ours.generate(ids_a, attention_mask=mask, max_new_tokens=6)
    gen_b = ours.generate(ids_b, attention_mask=mask, max_new_tokens=6)
    assert torch.equal(gen_a[:, 12:], gen_b[:, 12:])


def test_no_mask_and_all_ones_are_identical(model_pair):
    ours, _ = model_pair(SCHEDULES[HYBRID])
    ids = torch.stack(prompts([12, 12], seed=3))
    for mask in (torch.ones_like(ids), torch.ones(ids.shape, dtype=torch.bool)):
        with torch.no_grad():
            assert torch.equal(ours(ids, attention_mask=mask).logits, ours(ids).logits)
        assert torch.equal(
            ours.generate(ids, attention_mask=mask, max_new_tokens=5),
            ours.generate(ids, max_new_tokens=5),
        )


def test_mask_dtypes(model_pair):
    ours, _ = model_pair(SCHEDULES[HYBRID])
    ids, mask = left_pad(prompts())
    with torch.no_grad():
        want = ours(ids, attention_mask=mask).logits
        for dtype in (torch.bool, torch.int32, torch.uint8, torch.float32):
            assert torch.equal(ours(ids, attention_mask=mask.to(dtype)).logits, want)


def test_gradients_are_finite_with_padding(model_pair):
    ours, _ = model_pair(SCHEDULES[HYBRID])
    ours.train()
    ids, mask = left_pad(prompts())
    out = ours(ids, attention_mask=mask)
    (out.logits[mask.bool()].logsumexp(-1).mean() + out.aux_loss).backward()
    assert all(torch.isfinite(p.grad).all() for p in ours.parameters() if p.grad is not None)


# ------------------------------------------------------------------ against transformers
@pytest.mark.parametrize("name", SCHEDULES)
def test_padded_logits_and_aux_loss_match_transformers(model_pair, name):
    ours, theirs = model_pair(SCHEDULES[name])
    ids, mask = left_pad(prompts())
    moe = bool(ours.config.moe_layers())
    with torch.no_grad():
        out = ours(ids, attention_mask=mask)
        ref = theirs(ids, attention_mask=mask, output_router_logits=moe, use_cache=False)
    real = mask.bool()
    scale = ref.logits[real].abs().max()
    assert ((out.logits[real] - ref.logits[real]).abs().max() / scale).item() < 1e-4
    if moe:  # the load-balancing loss counts the real tokens only, in both
        coef = ours.config.router_aux_loss_coef
        torch.testing.assert_close(out.aux_loss, coef * ref.aux_loss, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    "name", [HYBRID, ATTENTION, "attention at 0, MHA, tied", "GQA 4:1, MoE on even layers, top-3"]
)
def test_padded_generation_matches_transformers(model_pair, name):
    # (transformers' Jamba cannot generate without an attention layer)
    ours, theirs = model_pair(SCHEDULES[name])
    ours.double()
    theirs.double()
    ids, mask = left_pad(prompts())
    # transformers fills finished rows with pad_token_id; ours repeats eos: make them the same
    want = theirs.generate(
        ids, attention_mask=mask, max_new_tokens=10, do_sample=False, use_cache=True,
        eos_token_id=2, pad_token_id=2,
    )  # fmt: skip
    got = ours.generate(ids, attention_mask=mask, max_new_tokens=10, eos_token_id=2)
    assert torch.equal(got, want)


# ------------------------------------------------------------------ errors
BAD_MASKS = {
    "right padding": ([[1, 1, 1, 0], [1, 1, 1, 1]], "row 0 .* at its end \\(right padding\\).*"
                      'padding_side = "left"'),
    "a hole": ([[0, 1, 0, 1], [1, 1, 1, 1]], "row 0 .* inside it \\(a hole\\)"),
    "both ends": ([[1, 1, 1, 1], [0, 1, 1, 0]], "row 1 .*\\(right padding\\)"),
    "a row of padding only": ([[0, 0, 0, 0], [1, 1, 1, 1]], "row 0 has no real token"),
    "values other than 0 and 1": ([[0, 2, 1, 1], [1, 1, 1, 1]], "only 0 \\(padding\\) and 1"),
    "a fraction": ([[0, 0.5, 1, 1], [1, 1, 1, 1]], "only 0 \\(padding\\) and 1"),
    "wrong shape": ([[1, 1, 1], [1, 1, 1]], "input_ids' shape \\(batch, L\\) = \\(2, 4\\)"),
    "one dimension": ([1, 1, 1, 1], "input_ids' shape"),
    "a list": ("list", "attention_mask must be a tensor"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_MASKS)
def test_bad_masks_raise(model_pair, case):
    ours, _ = model_pair(SCHEDULES[HYBRID])
    ids = torch.ones(2, 4, dtype=torch.long)
    values, message = BAD_MASKS[case]
    mask = [[1] * 4] * 2 if values == "list" else torch.tensor(values)
    with pytest.raises(ValueError, match="attention_mask") as error:
        ours(ids, attention_mask=mask)
    assert error.match(message)
    with pytest.raises(ValueError, match=message):
        ours.generate(ids, attention_mask=mask, max_new_tokens=2)


def test_a_mask_with_a_cache_raises(model_pair):
    ours, _ = model_pair(SCHEDULES[HYBRID])
    ids, mask = left_pad(prompts())
    with torch.no_grad():
        cache = ours(ids, attention_mask=mask, return_cache=True).cache
        step_mask = torch.cat([mask, torch.ones(3, 1, dtype=mask.dtype)], 1)
        with pytest.raises(ValueError, match="attention_mask is given with the prompt only"):
            ours(ids[:, :1], attention_mask=step_mask, cache=cache)


def test_layers_check_their_mask():
    cfg = jm.JambaConfig(**BASE)
    x = torch.randn(2, 5, BASE["hidden_size"])
    attention, mixer = jm.attention.JambaAttention(cfg, 0), jm.mamba.JambaMambaMixer(cfg, 0)
    for layer in (attention, mixer):
        with pytest.raises(ValueError, match="attention_mask must be a bool tensor"):
            layer(x, attention_mask=torch.ones(2, 5, dtype=torch.long))
    kv = attention(x, return_cache=True)[1]
    with pytest.raises(ValueError, match="attention_mask is given at the prefill only"):
        attention(x[:, :1], cache=kv, attention_mask=torch.ones(2, 1, dtype=torch.bool))

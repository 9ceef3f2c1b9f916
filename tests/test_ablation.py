"""jamba_min.ablation: equal-size configs, positions, and probes that measure what they say."""

import pytest
import torch
from einops import rearrange

import jamba_min as jm
from jamba_min import ablation as ab


@pytest.mark.parametrize("hidden", [32, 64])
def test_architectures_have_about_the_same_size(hidden):
    sizes = {
        a: jm.count_params(ab.ablation_config(a, hidden_size=hidden))["total"] for a in ab.SCHEDULES
    }
    cards = {a: ab.ablation_config(a).block_card()["a:m"] for a in ab.SCHEDULES}
    assert cards == {"attention": "1:0", "hybrid 1:3": "1:3", "hybrid 1:7": "1:7", "mamba": "0:1"}
    assert max(sizes.values()) / min(sizes.values()) < 1.02, sizes


def test_learned_positions_make_attention_order_aware():
    torch.manual_seed(0)
    cfg = ab.ablation_config("attention", vocab_size=32, num_hidden_layers=1)
    plain = jm.JambaForCausalLM(cfg)
    x = torch.randint(0, 32, (1, 6))
    swapped = x[:, [1, 0, 2, 3, 4, 5]]
    # without positions, one causal attention layer at the third token sees {x0, x1, x2} as a
    # set (a second layer would not: its inputs at positions 0 and 1 saw different prefixes)
    assert torch.allclose(plain(x).logits[:, 2], plain(swapped).logits[:, 2], atol=1e-5)
    old = plain.model.embed_tokens.weight
    with_pos = ab.add_learned_positions(plain, 8)
    assert with_pos.model.embed_tokens.weight is old  # the same token embeddings
    assert not torch.allclose(with_pos(x).logits[:, 2], with_pos(swapped).logits[:, 2], atol=1e-5)
    with pytest.raises(ValueError, match="positions were learned for at most 8"):
        with_pos(torch.zeros(1, 9, dtype=torch.long))


def test_attention_maps_reproduce_the_layers_output():
    """The recomputed weights, applied to the layer's values, give the layer's own output."""
    torch.manual_seed(0)
    model = jm.JambaForCausalLM(
        ab.ablation_config("hybrid 1:3", vocab_size=32, num_hidden_layers=4)
    )
    x = torch.randint(0, 32, (2, 10))
    seen = {}
    layer = model.model.layers[2]
    layer.self_attn.register_forward_hook(lambda m, a, out: seen.update(inp=a[0], out=out))
    maps = ab.attention_maps(model, x)
    assert list(maps) == [2]
    p = maps[2]
    assert torch.allclose(p.sum(-1), torch.ones(2, 4, 10))
    assert (p.triu(1) == 0).all()
    attn = layer.self_attn
    v = rearrange(attn.v_proj(seen["inp"]), "b L (G d_h) -> b G L d_h", G=attn.num_kv_heads)
    v = v.repeat_interleave(attn.num_heads // attn.num_kv_heads, dim=1)
    out = attn.o_proj(rearrange(p @ v, "b H L d_h -> b L (H d_h)"))
    torch.testing.assert_close(out, seen["out"], rtol=1e-5, atol=1e-6)


def test_induction_score_finds_a_planted_induction_head():
    half, L = 5, 10
    p = torch.zeros(1, 2, L, L)
    p[..., 0] = 1.0  # head 0 looks at the first token; head 1 is the induction head below
    for t in range(L):
        p[0, 1, t] = 0
        p[0, 1, t, t - half + 1 if t >= half else 0] = 1.0
    p[0, 0, :, 0] = 1.0
    score = ab.induction_score({3: p}, half)[3]
    assert score.tolist() == [0.0, 1.0]


def test_induction_mass_reads_the_token_after_the_latest_earlier_occurrence():
    x = torch.tensor([[5, 7, 5, 8, 9, 5, 1]])
    queries = torch.zeros_like(x, dtype=torch.bool)
    queries[0, 5] = True  # token 5 occurred at 0 and 2; the latest is 2, so position 3 is read
    L = x.shape[1]
    p = torch.rand(1, 3, L, L).tril().softmax(-1)
    mass = ab.induction_mass({1: p}, x, queries)[1]
    assert torch.equal(mass, p[0, :, 5, 3])
    # on repeated sequences of distinct tokens it is induction_score's measure
    x = torch.randperm(40)[:8].repeat(2)[None]
    p = torch.rand(1, 2, 16, 16).tril()
    queries = torch.arange(16)[None] >= 8
    torch.testing.assert_close(
        ab.induction_mass({0: p}, x, queries)[0], ab.induction_score({0: p}, 8)[0]
    )


def test_induction_mass_names_bad_queries():
    x = torch.tensor([[1, 2, 3, 1]])
    p = {0: torch.rand(1, 2, 4, 4)}
    with pytest.raises(ValueError, match="queries must be a bool tensor"):
        ab.induction_mass(p, x, torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="position 2 has no earlier occurrence"):
        ab.induction_mass(p, x, torch.tensor([[False, False, True, True]]))


def test_dropping_the_inner_norms_changes_the_mamba_layers_only():
    torch.manual_seed(0)
    model = jm.JambaForCausalLM(
        ab.ablation_config("hybrid 1:3", vocab_size=32, num_hidden_layers=4)
    )
    x = torch.randint(0, 32, (2, 8))
    before = ab.mamba_activations(model, x)
    ab.drop_inner_norms(model)
    after = ab.mamba_activations(model, x)
    assert sorted(before) == sorted(after) == [0, 1, 3]
    assert all(before[i] != after[i] for i in before)
    assert not any(
        isinstance(m, jm.RMSNorm)
        for n, m in model.named_modules()
        if "layernorm" in n and "mamba" in n
    )


def test_repeated_sequences_repeat():
    x = ab.repeated_sequences(3, 7, 50, seed=1)
    assert x.shape == (3, 14) and torch.equal(x[:, :7], x[:, 7:])


def test_bad_architecture_is_named():
    with pytest.raises(ValueError, match="architecture must be one of"):
        ab.ablation_config("transformer")


def test_sweep_results_ship_with_the_package():
    from jamba_min import results

    assert "hybrid_vs_pure" in results.available()
    sweep = results.load("hybrid_vs_pure")
    assert set(sweep["mqar"]) == set(ab.SCHEDULES)
    assert all(len(runs) == len(sweep["meta"]["args"]["seeds"]) for runs in sweep["mqar"].values())
    with pytest.raises(ValueError, match="name must be one of"):
        results.load("../hybrid_vs_pure")


def test_shipped_benchmark_results_equal_the_committed_ones():
    """Chapters 3 and 7 plot benchmarks/*.json, and in Colab (no repository) the package's copy:
    the two must be the same bytes."""
    from pathlib import Path

    from jamba_min import results

    root = Path(__file__).resolve().parents[1]
    for name in ("scan_cpu", "moe_cpu", "decode"):
        shipped = Path(results.__file__).with_name(f"{name}.json").read_bytes()
        assert shipped == (root / "benchmarks" / f"{name}.json").read_bytes(), name

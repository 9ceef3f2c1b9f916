"""MLP and mixture of experts against transformers; routing, dispatch and the auxiliary loss."""

import pytest
import torch
from transformers.models.jamba import modeling_jamba

import jamba_min as jm
from jamba_min.moe import JambaMLP, JambaSparseMoeBlock, load_balancing_loss, route

BASE = dict(
    vocab_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    hidden_size=24,
    intermediate_size=20,
)


@pytest.fixture
def moe_pair(hf_config):
    """``moe_pair(seed, **changes)``: our MoE block and transformers', with the same random
    weights."""

    def make(seed, **kw):
        cfg = jm.JambaConfig(**BASE, **kw)
        torch.manual_seed(seed)
        ours = JambaSparseMoeBlock(cfg)
        theirs = modeling_jamba.JambaSparseMoeBlock(hf_config(cfg))
        theirs.load_state_dict(ours.state_dict())
        return ours, theirs

    return make


def assert_same_gradients(ours, theirs, x, atol):
    """Gradients of every parameter of ours and transformers' MoE block under the same loss."""
    (ours(x)[0] ** 2).sum().backward()
    (theirs(x) ** 2).sum().backward()
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=atol, msg=name)


def test_mlp_matches_transformers(hf_config):
    cfg = jm.JambaConfig(**BASE)
    ours = JambaMLP(cfg)
    theirs = modeling_jamba.JambaMLP(hf_config(cfg))
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 7, 24)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize(("n", "k"), [(4, 2), (5, 1), (8, 3), (3, 3)])
def test_moe_matches_transformers(moe_pair, n, k):
    ours, theirs = moe_pair(0, num_experts=n, num_experts_per_tok=k)
    x = torch.randn(3, 17, 24)
    out, logits = ours(x)
    torch.testing.assert_close(out, theirs(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours(x, naive=True)[0], out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits, theirs.router(x.reshape(-1, 24))[0])


@pytest.mark.parametrize(("n", "k"), [(4, 2), (5, 1), (3, 3)])
def test_one_token_path_matches_transformers(moe_pair, n, k):
    """One token (decoding at batch 1) runs its K experts directly; same output, gradients too."""
    ours, theirs = moe_pair(1, num_experts=n, num_experts_per_tok=k)
    for seed in range(5):
        x = torch.randn(1, 1, 24, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(ours(x)[0], theirs(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours(x)[0], ours(x, naive=True)[0], rtol=1e-5, atol=1e-6)
    assert_same_gradients(ours, theirs, x, atol=1e-7)


def test_moe_gradients_match_transformers(moe_pair):
    ours, theirs = moe_pair(0, num_experts=4, num_experts_per_tok=2)
    x = torch.randn(2, 9, 24)
    assert_same_gradients(ours, theirs, x, atol=1e-6)


def test_jamba_does_not_renormalise_mixtral_does():
    logits = torch.randn(50, 8)
    w, idx = route(logits, 2)
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(w, probs.gather(1, idx))  # the probabilities as they are
    assert (w.sum(-1) < 1).all()
    w_mixtral, idx_mixtral = route(logits, 2, renormalize=True)
    assert torch.equal(idx, idx_mixtral)
    torch.testing.assert_close(w_mixtral.sum(-1), torch.ones(50))


def test_load_balancing_loss_matches_transformers():
    torch.manual_seed(0)
    layers = tuple(torch.randn(40, 6) for _ in range(3))
    ours = load_balancing_loss(layers, num_experts=6, top_k=2)
    theirs = modeling_jamba.load_balancing_loss_func(layers, num_experts=6, top_k=2)
    torch.testing.assert_close(ours, theirs)
    # uniform probabilities: P_e = 1/n, and Σ f_e = K whichever experts win the ties, so the
    # loss is n · (1/n) · K = K exactly
    uniform = load_balancing_loss((torch.zeros(12, 6),), num_experts=6, top_k=2)
    assert uniform.item() == pytest.approx(2.0, rel=1e-6)


def test_load_balancing_loss_needs_logits():
    with pytest.raises(ValueError, match="router_logits is empty"):
        load_balancing_loss([], 4, 2)

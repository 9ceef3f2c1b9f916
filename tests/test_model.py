"""JambaForCausalLM's forward pass against transformers' on tiny random configs built locally."""

import dataclasses

import pytest
import torch
import transformers

import jamba_min as jm
from jamba_min.model import JambaForCausalLM

BASE = dict(
    vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, num_experts=4, mamba_d_state=8,
)  # fmt: skip
ONE_EXPERT = dict(num_experts=1, num_experts_per_tok=1)
SCHEDULES = {
    "jamba-like": dict(num_hidden_layers=8, attn_layer_period=4, attn_layer_offset=2),
    "MoE everywhere, top-1, no attention": dict(
        expert_layer_period=1, expert_layer_offset=0, num_experts_per_tok=1
    ),
    "attention at 0, MHA, tied": dict(
        attn_layer_period=2, attn_layer_offset=0, num_key_value_heads=4, tie_word_embeddings=True
    ),
    "pure Mamba": dict(attn_layer_period=8, attn_layer_offset=7),
    "pure attention, dense": dict(attn_layer_period=1, attn_layer_offset=0, **ONE_EXPERT),
    "GQA 4:1, MoE on even layers, top-3": dict(
        attn_layer_period=3, attn_layer_offset=1, num_key_value_heads=1, expert_layer_offset=0,
        num_experts=5, num_experts_per_tok=3,
    ),
}  # fmt: skip


def pair(changes):
    cfg = jm.JambaConfig(**{**BASE, **changes})
    hf_cfg = transformers.JambaConfig(**dataclasses.asdict(cfg))
    hf_cfg._experts_implementation = "eager"
    torch.manual_seed(0)
    theirs = transformers.JambaForCausalLM(hf_cfg).eval()
    with torch.no_grad():  # transformers leaves some weights at their init value; randomise all
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ours = JambaForCausalLM(cfg).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


@pytest.mark.parametrize("name", SCHEDULES)
def test_logits_match_transformers(name):
    ours, theirs = pair(SCHEDULES[name])
    ids = torch.randint(0, BASE["vocab_size"], (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = ours(ids)
        # (transformers fails on output_router_logits without MoE layers)
        moe = bool(ours.config.moe_layers())
        ref = theirs(ids, output_router_logits=moe, use_cache=False)
    scale = ref.logits.abs().max()
    assert ((out.logits - ref.logits).abs().max() / scale).item() < 1e-4
    if moe:
        coef = ours.config.router_aux_loss_coef
        torch.testing.assert_close(out.aux_loss, coef * ref.aux_loss, rtol=1e-5, atol=1e-9)
    else:
        assert out.aux_loss is None


def test_state_dict_keys_are_transformers_keys():
    for changes in SCHEDULES.values():
        ours, theirs = pair(changes)
        assert set(ours.state_dict()) == set(theirs.state_dict())


def test_parameter_count_matches_the_accounting():
    for changes in SCHEDULES.values():
        cfg = jm.JambaConfig(**{**BASE, **changes})
        assert JambaForCausalLM(cfg).num_parameters() == jm.count_params(cfg)["total"]


def test_bad_input_ids():
    model = JambaForCausalLM(jm.JambaConfig(**BASE))
    with pytest.raises(
        ValueError, match=r"input_ids must lie in \[0, vocab_size = 97\), got values in \[0, 97\]"
    ):
        model(torch.tensor([[0, 97]]))
    with pytest.raises(ValueError, match="integer tensor of shape \\(batch, L\\)"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"config must be a jamba_min\.JambaConfig"):
        JambaForCausalLM({"hidden_size": 32})

"""Checkpoints: folders written by transformers, both expert layouts, round trips, bad files."""

import json

import pytest
import torch
from configs import BASE, SCHEDULES

import jamba_min as jm
from jamba_min.checkpoint import _split_experts

IDS = torch.randint(0, BASE["vocab_size"], (2, 7), generator=torch.Generator().manual_seed(0))


def logits(model):
    with torch.no_grad():
        out = (
            model(IDS, use_cache=False)
            if not isinstance(model, jm.JambaForCausalLM)
            else model(IDS)
        )
    return out.logits


@pytest.mark.parametrize("shard", [None, "30KB"])
@pytest.mark.parametrize("name", ["jamba-like", "attention at 0, MHA, tied"])
def test_from_a_folder_written_by_transformers(model_pair, tmp_path, name, shard):
    _, theirs = model_pair(SCHEDULES[name])
    kwargs = {"max_shard_size": shard} if shard else {}
    theirs.save_pretrained(tmp_path, **kwargs)
    assert (tmp_path / "model.safetensors.index.json").exists() == bool(shard)
    ours = jm.from_pretrained(tmp_path)
    torch.testing.assert_close(logits(ours), logits(theirs), rtol=1e-5, atol=1e-5)


def test_per_expert_layout_loads_too(model_pair):
    ours, theirs = model_pair(SCHEDULES["jamba-like"])
    published = _split_experts(theirs.state_dict())
    assert any(".experts.0.gate_proj.weight" in k for k in published)
    fresh = jm.JambaForCausalLM(ours.config).eval()
    fresh.load_hf_state_dict(published)
    torch.testing.assert_close(logits(fresh), logits(theirs), rtol=1e-5, atol=1e-5)


def test_save_and_load_round_trip(model_pair, tmp_path):
    ours, _ = model_pair(SCHEDULES["GQA 4:1, MoE on even layers, top-3"])
    ours.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        keys = list(f.keys())  # safe_open is not iterable
    assert any(k.endswith(".experts.4.down_proj.weight") for k in keys)  # published layout
    loaded = jm.from_pretrained(tmp_path)
    assert loaded.config == ours.config
    assert torch.equal(logits(loaded), logits(ours))
    assert jm.from_pretrained(tmp_path, dtype=torch.float64).lm_head.weight.dtype == torch.float64


def test_mismatches_are_listed_together(model_pair):
    ours, theirs = model_pair(SCHEDULES["jamba-like"])
    sd = dict(theirs.state_dict())
    del sd["model.final_layernorm.weight"]
    sd["model.layers.0.extra.weight"] = torch.zeros(1)
    sd["model.embed_tokens.weight"] = torch.zeros(5, 5)
    with pytest.raises(ValueError) as err:
        ours.load_hf_state_dict(sd)
    message = str(err.value)
    assert "missing keys (1):\n    model.final_layernorm.weight" in message
    assert "unexpected keys (1):\n    model.layers.0.extra.weight" in message
    assert "model.embed_tokens.weight: checkpoint (5, 5), model (97, 32)" in message


def test_bad_folders(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        jm.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"has no config\.json"):
        jm.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(jm.JambaConfig(**BASE).to_dict()))
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ValueError, match=r"pickled \.bin checkpoints are not loaded"):
        jm.from_pretrained(tmp_path)


def test_truncated_file(model_pair, tmp_path):
    ours, _ = model_pair(SCHEDULES["jamba-like"])
    ours.save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or not a safetensors file"):
        jm.from_pretrained(tmp_path)

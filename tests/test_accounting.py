"""count_params, kv_cache_bytes and mamba_state_bytes against transformers' Jamba."""

import pytest
import torch
import transformers

import jamba_min as jm

GiB = 2**30

TINY = dict(
    vocab_size=97,
    hidden_size=48,
    intermediate_size=40,
    num_hidden_layers=6,
    num_attention_heads=6,
    num_key_value_heads=2,
    num_experts=4,
    mamba_d_state=5,
    mamba_d_conv=3,
    attn_layer_period=3,
    attn_layer_offset=1,
)
CONFIGS = {
    "jamba-v0.1": {},
    "tiny": TINY,
    "tiny, MoE everywhere, top-1, tied": {
        **TINY,
        "expert_layer_period": 1,
        "expert_layer_offset": 0,
        "num_experts_per_tok": 1,
        "tie_word_embeddings": True,
    },
    "tiny, biases, odd dt rank": {
        **TINY,
        "mamba_proj_bias": True,
        "mamba_conv_bias": False,
        "mamba_dt_rank": 5,
        "mamba_expand": 3,
    },
    "tiny, pure Mamba, dense": {**TINY, "attn_layer_period": 7, "attn_layer_offset": 6,
                                "num_experts": 1, "num_experts_per_tok": 1},
    "tiny, pure attention, MHA": {**TINY, "attn_layer_period": 1, "attn_layer_offset": 0,
                                  "num_key_value_heads": 6},
}  # fmt: skip


@pytest.fixture
def hf_model(hf_config):
    """``hf_model(cfg, device="meta")``: transformers' JambaForCausalLM for ``cfg``."""

    def make(cfg: jm.JambaConfig, device: str = "meta") -> transformers.JambaForCausalLM:
        with torch.device(device):
            return transformers.JambaForCausalLM(hf_config(cfg))

    return make


def part_of(name: str) -> str:
    """Which `param_breakdown` part a transformers parameter name belongs to."""
    if name == "model.embed_tokens.weight":
        return "embedding"
    if name == "lm_head.weight":
        return "lm_head"
    for marker, part in [
        (".mamba.", "mamba"),
        (".self_attn.", "attention"),
        (".feed_forward.experts.", "experts"),
        (".feed_forward.router.", "router"),
        (".feed_forward.", "mlp"),
        ("layernorm", "norms"),
    ]:
        if marker in name:
            return part
    raise AssertionError(f"unclassified parameter {name}")


def test_paper_numbers():
    cfg = jm.JambaConfig()
    assert jm.count_params(cfg) == {"total": 51_570_323_328, "active": 12_110_311_296}
    assert jm.kv_cache_bytes(cfg, 256 * 1024) == 4 * GiB
    assert jm.kv_cache_bytes(cfg, 1) == 16_384
    assert jm.mamba_state_bytes(cfg) == 28 * 8192 * (16 + 4) * 2


@pytest.mark.parametrize("name", CONFIGS)
def test_counts_match_transformers_on_meta(hf_model, name):
    cfg = jm.JambaConfig(**CONFIGS[name])
    model = hf_model(cfg)
    parts = dict.fromkeys(jm.param_breakdown(cfg), 0)
    idle = 0
    for pname, p in model.named_parameters():  # shared (tied) parameters are listed once
        parts[part_of(pname)] += p.numel()
        if ".feed_forward.experts." in pname:
            idle += p.numel() * (cfg.num_experts - cfg.num_experts_per_tok) // cfg.num_experts
    assert jm.param_breakdown(cfg) == parts
    assert jm.count_params(cfg) == {
        "total": sum(parts.values()),
        "active": sum(parts.values()) - idle,
    }


@pytest.mark.parametrize(
    ("name", "total", "active", "kv_gib"),
    [
        ("Llama-2 6.7B", 6_738_415_616, 6_738_415_616, 128),
        ("Mistral 7.2B", 7_241_732_096, 7_241_732_096, 32),
        ("Mixtral 46.7B", 46_702_792_704, 12_879_925_248, 32),
        ("Jamba 52B", 51_570_323_328, 12_110_311_296, 4),
    ],
)
def test_paper_table1(name, total, active, kv_gib):
    # Totals are the published parameter counts of each model (Llama-2-7b, Mistral-7B-v0.1,
    # Mixtral-8x7B-v0.1, Jamba-v0.1); the KV column is the paper's Table 1.
    cfg = jm.paper_models()[name]
    assert jm.count_params(cfg) == {"total": total, "active": active}
    assert jm.kv_cache_bytes(cfg, 256 * 1024) == kv_gib * GiB
    assert jm.PAPER_TABLE1[name]["kv_cache_gb"] == kv_gib


# transformers' Jamba cannot build a cache without any attention layer (its get_seq_length asks
# the first attention layer), so the pure-Mamba config is left out here.
@pytest.mark.parametrize(
    "name", [n for n in CONFIGS if n not in ("jamba-v0.1", "tiny, pure Mamba, dense")]
)
def test_cache_bytes_match_what_transformers_holds(hf_model, name):
    cfg = jm.JambaConfig(**CONFIGS[name])
    model = hf_model(cfg, "cpu").eval()
    batch, seq_len = 3, 11
    with torch.no_grad():
        cache = model(
            torch.randint(0, cfg.vocab_size, (batch, seq_len)), use_cache=True
        ).past_key_values
    kv = ssm = 0
    for layer in cache.layers:
        if hasattr(layer, "keys"):
            kv += layer.keys.nbytes + layer.values.nbytes
        else:
            states = [*layer.conv_states.values(), *layer.recurrent_states.values()]
            ssm += sum(t.nbytes for t in states)
    assert kv == jm.kv_cache_bytes(cfg, seq_len, batch=batch, dtype_bytes=4)
    assert ssm == jm.mamba_state_bytes(cfg, batch=batch, dtype_bytes=4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jm.kv_cache_bytes(jm.JambaConfig(), -1), "seq_len must be an int >= 0, got -1"),
        (
            lambda: jm.kv_cache_bytes(jm.JambaConfig(), 8, batch=0),
            "batch must be an int >= 1, got 0",
        ),
        (lambda: jm.kv_cache_bytes(jm.JambaConfig(), 1.5), "seq_len must be an int >= 0, got 1.5"),
        (lambda: jm.kv_cache_bytes(jm.JambaConfig(), 8, dtype_bytes=0), "dtype_bytes must be"),
        (lambda: jm.mamba_state_bytes(jm.JambaConfig(), batch=-2), "batch must be an int >= 1"),
        (
            lambda: jm.count_params({"hidden_size": 64}),
            "cfg must be a jamba_min.JambaConfig, got dict",
        ),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        call()

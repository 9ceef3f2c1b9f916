"""JambaConfig: transformers' field names and defaults, validation, the layer schedule."""

import dataclasses
import json

import pytest
import transformers

import jamba_min as jm

# transformers' implementation switches, which say how to compute rather than what the model is.
HF_ONLY = {"use_mambapy", "use_associative_scan"}

SCHEDULES = [
    {},
    dict(num_hidden_layers=9, attn_layer_period=3, attn_layer_offset=2),
    dict(num_hidden_layers=5, attn_layer_period=1, attn_layer_offset=0),
    dict(num_hidden_layers=7, attn_layer_period=8, attn_layer_offset=7),
    dict(num_hidden_layers=6, expert_layer_period=3, expert_layer_offset=0, num_experts=4),
    dict(num_hidden_layers=4, num_experts=1, num_experts_per_tok=1),
]


def test_defaults_are_transformers_defaults():
    ours, theirs = jm.JambaConfig(), transformers.JambaConfig()
    names = {f.name for f in dataclasses.fields(jm.JambaConfig)}
    their_fields = set(theirs.to_dict())
    assert names <= their_fields, names - their_fields
    assert {n for n in theirs.__dataclass_fields__ if not n.startswith("_")} - names >= HF_ONLY
    for name in names:
        assert getattr(ours, name) == getattr(theirs, name), name


def test_jamba_v01_architecture():
    cfg = jm.JambaConfig()
    assert cfg.mamba_dt_rank == 256 and cfg.mamba_d_inner == 8192 and cfg.head_dim == 128
    assert cfg.attention_layers() == [4, 12, 20, 28]
    assert cfg.moe_layers() == list(range(1, 32, 2))
    assert len(cfg.mamba_layers()) == 28
    assert set(cfg.moe_layers()) <= set(cfg.mamba_layers())  # attention layers use dense MLPs
    assert cfg.block_card() == {"l": 8, "a:m": "1:7", "e": 2, "n": 16, "K": 2}


@pytest.mark.parametrize(
    "schedule, block, a_m",
    [
        (dict(num_hidden_layers=6, attn_layer_period=8, attn_layer_offset=7), 1, "0:1"),  # Mamba
        (dict(num_hidden_layers=8, attn_layer_period=16, attn_layer_offset=15), 1, "0:1"),
        (dict(num_hidden_layers=4, attn_layer_period=1, attn_layer_offset=0), 1, "1:0"),  # attn
        (dict(num_hidden_layers=8, attn_layer_period=16, attn_layer_offset=2), 8, "1:7"),
        (dict(num_hidden_layers=8, attn_layer_period=4, attn_layer_offset=2), 4, "1:3"),
        (dict(num_hidden_layers=12, attn_layer_period=3, attn_layer_offset=1), 3, "1:2"),
        (dict(num_hidden_layers=10, attn_layer_period=4, attn_layer_offset=0), 10, "3:7"),
        (dict(num_hidden_layers=72, attn_layer_period=8, attn_layer_offset=4), 8, "1:7"),  # 1.5
    ],
)
def test_block_card_describes_the_model_it_is_given(schedule, block, a_m):
    """l is the shortest block that repeats to make up the model, never more than its depth;
    a:m counts that block's attention and Mamba layers."""
    cfg = jm.JambaConfig(**schedule)
    card = cfg.block_card()
    assert (card["l"], card["a:m"]) == (block, a_m)
    a, m = map(int, a_m.split(":"))
    assert len(cfg.attention_layers()) == a * cfg.num_hidden_layers // block
    assert len(cfg.mamba_layers()) == m * cfg.num_hidden_layers // block


def test_dt_rank_auto_rounds_up():
    assert (
        jm.JambaConfig(hidden_size=100, num_attention_heads=4, num_key_value_heads=2).mamba_dt_rank
        == 7
    )
    assert jm.JambaConfig(mamba_dt_rank=3).mamba_dt_rank == 3
    assert (
        jm.JambaConfig()
        .replace(hidden_size=64, num_attention_heads=4, num_key_value_heads=4)
        .mamba_dt_rank
        == 4
    )


@pytest.mark.parametrize("changes", SCHEDULES)
def test_schedule_matches_transformers(hf_config, changes):
    ours = jm.JambaConfig(**changes)
    theirs = hf_config(ours)
    assert ours.layers_block_type == theirs.layers_block_type
    assert ours.layers_num_experts == theirs.layers_num_experts
    assert ours.attention_layers() == [
        i for i, t in enumerate(theirs.layers_block_type) if t == "attention"
    ]
    assert ours.moe_layers() == [i for i, n in enumerate(theirs.layers_num_experts) if n > 1]


def test_from_dict_reads_a_checkpoint_config():
    d = transformers.JambaConfig(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=3
    )
    d = json.loads(d.to_json_string())  # what config.json holds, with transformers' extra keys
    d["some_future_key"] = [1, 2]
    cfg = jm.JambaConfig.from_dict(d)
    assert cfg.hidden_size == 64 and cfg.num_hidden_layers == 3 and cfg.mamba_dt_rank == 4
    assert jm.JambaConfig.from_dict({"num_local_experts": 8}).num_experts == 8
    assert jm.JambaConfig.from_dict(cfg.to_dict()) == cfg


def test_from_dict_rejects_non_mappings():
    with pytest.raises(ValueError, match="mapping"):
        jm.JambaConfig.from_dict([("hidden_size", 64)])


def test_kv_heads_none_means_multi_head():
    assert jm.JambaConfig(num_key_value_heads=None).num_key_value_heads == 32


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        (dict(attn_layer_offset=8), "attn_layer_offset", "8"),
        (dict(expert_layer_period=2, expert_layer_offset=2), "expert_layer_offset", "2"),
        (dict(num_attention_heads=5), "num_attention_heads", "5"),
        (dict(num_key_value_heads=3), "num_key_value_heads", "3"),
        (dict(num_experts=4, num_experts_per_tok=5), "num_experts_per_tok", "5"),
        (dict(hidden_size=0), "hidden_size", "0"),
        (dict(vocab_size=-1), "vocab_size", "-1"),
        (dict(num_hidden_layers=2.0), "num_hidden_layers", "2.0"),
        (dict(mamba_d_state=0), "mamba_d_state", "0"),
        (dict(mamba_dt_rank="big"), "mamba_dt_rank", "'big'"),
        (dict(attn_layer_period=0), "attn_layer_period", "0"),
        (dict(attn_layer_offset=-1), "attn_layer_offset", "-1"),
        (dict(rms_norm_eps=0.0), "rms_norm_eps", "0.0"),
        (dict(router_aux_loss_coef=-0.1), "router_aux_loss_coef", "-0.1"),
        (dict(hidden_act="swish"), "hidden_act", "'swish'"),
        (dict(tie_word_embeddings="yes"), "tie_word_embeddings", "'yes'"),
        (dict(num_experts=True), "num_experts", "True"),
    ],
)
def test_bad_values_name_the_field_and_value(changes, field, value):
    with pytest.raises(ValueError) as err:
        jm.JambaConfig(**changes)
    assert field in str(err.value) and value in str(err.value)


def test_validate_catches_edits_after_construction():
    cfg = jm.JambaConfig()
    cfg.num_key_value_heads = 7
    with pytest.raises(ValueError, match="num_key_value_heads"):
        cfg.validate()
    with pytest.raises(ValueError, match="num_key_value_heads"):
        cfg.replace(num_hidden_layers=4)


def test_layer_index_is_checked():
    cfg = jm.JambaConfig(num_hidden_layers=4)
    with pytest.raises(ValueError, match=r"layer index must be in \[0, 4\), got 4"):
        cfg.is_attention_layer(4)


def test_ignored_fields_are_kept_as_given_and_not_checked():
    """Fields jamba_min never reads cost no validation: they only round-trip."""
    odd = dict(use_cache="yes", max_position_embeddings=None, eos_token_id=[1, 2], bos_token_id=-1)
    cfg = jm.JambaConfig(**odd)
    assert set(odd) <= jm.config.IGNORED_FIELDS
    assert {k: cfg.to_dict()[k] for k in odd} == odd

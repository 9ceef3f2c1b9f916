"""Tiny model configurations that several test files share, importable at collection time.

Decorators such as ``@pytest.mark.parametrize("name", SCHEDULES)`` need them when a module is
imported, before any fixture exists; the fixtures that build models from them are in conftest.py.
"""

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

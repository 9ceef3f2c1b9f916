"""Attention: the written-out reference, SDPA, transformers' JambaAttention, and the KV cache."""

import pytest
import torch
from transformers.models.jamba import modeling_jamba

import jamba_min as jm
from jamba_min.attention import JambaAttention, KVCache, causal_attention

BASE = dict(
    vocab_size=32,
    num_hidden_layers=2,
    intermediate_size=16,
    attn_layer_period=1,
    attn_layer_offset=0,
)
HEADS = [(4, 4), (4, 2), (4, 1), (6, 3)]  # (query heads, key-value heads)


@pytest.fixture
def attention_pair(hf_config):
    """``attention_pair(heads, kv_heads, impl, hidden)``: our attention layer and transformers'
    eager one, with the same (initial) weights."""

    def make(heads, kv_heads, impl="sdpa", hidden=24):
        cfg = jm.JambaConfig(
            **BASE, hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=kv_heads
        )
        torch.manual_seed(0)
        ours = JambaAttention(cfg, 0, impl=impl).eval()
        hf_cfg = hf_config(cfg, eager_attention=True)
        theirs = modeling_jamba.JambaAttention(hf_cfg, layer_idx=0).eval()
        theirs.load_state_dict(ours.state_dict())
        return ours, theirs

    return make


def hf_forward(theirs, x, cache=None):
    L = x.shape[1]
    past = cache.get_seq_length() if cache is not None else 0
    mask = torch.full((L, past + L), float("-inf")).triu(past + 1)[None, None]
    return theirs(x, attention_mask=mask, cache=cache)[0]


def test_reference_equals_sdpa():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 8) for _ in range(3))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(causal_attention(q, k, v, 8**-0.5), want)


@pytest.mark.parametrize(("heads", "kv_heads"), HEADS)
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_matches_transformers(attention_pair, heads, kv_heads, impl):
    ours, theirs = attention_pair(heads, kv_heads, impl)
    x = torch.randn(2, 11, 24)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf_forward(theirs, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("heads", "kv_heads"), HEADS)
def test_cached_decoding_matches_transformers(attention_pair, hf_cache, heads, kv_heads):
    ours, theirs = attention_pair(heads, kv_heads)
    x = torch.randn(2, 9, 24)
    one_layer = {"num_hidden_layers": 1, "attn_layer_period": 1, "attn_layer_offset": 0}
    cache = hf_cache(ours.config, **one_layer)
    with torch.no_grad():
        y, kv = ours(x[:, :5], return_cache=True)
        torch.testing.assert_close(y, hf_forward(theirs, x[:, :5], cache), rtol=1e-5, atol=1e-6)
        for t in range(5, 9):
            y_t = ours(x[:, t : t + 1], cache=kv)
            torch.testing.assert_close(
                y_t, hf_forward(theirs, x[:, t : t + 1], cache), rtol=1e-5, atol=1e-6
            )


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("chunks", [[7], [3, 1, 1, 2], [1] * 7, [4, 3]])
def test_prefill_and_steps_equal_the_full_forward(attention_pair, impl, chunks):
    ours, _ = attention_pair(4, 2, impl)
    x = torch.randn(3, sum(chunks), 24)
    with torch.no_grad():
        full = ours(x)
        out, cache = ours(x[:, : chunks[0]], return_cache=True)
        outs, t = [out], chunks[0]
        for n in chunks[1:]:  # several tokens at once after a cache need an offset mask
            outs.append(ours(x[:, t : t + n], cache=cache))
            t += n
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-5, atol=1e-6)
    assert cache.length == x.shape[1]


def test_no_positional_encoding(attention_pair):
    # Without positions, attention is equivariant to permutations of its keys: the last query's
    # output does not change when the earlier tokens are shuffled.
    ours, _ = attention_pair(4, 2)
    x = torch.randn(1, 8, 24)
    shuffled = torch.cat([x[:, torch.randperm(7)], x[:, 7:]], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[:, -1], ours(shuffled)[:, -1], rtol=1e-5, atol=1e-6)


def test_cache_bytes_match_the_accounting():
    cfg = jm.JambaConfig(**{**BASE, "attn_layer_period": 2, "attn_layer_offset": 1},
                         hidden_size=32, num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
    layer = JambaAttention(cfg).to(torch.bfloat16)
    with torch.no_grad():
        _, cache = layer(torch.randn(3, 50, 32, dtype=torch.bfloat16), return_cache=True)
        for _ in range(13):
            layer(torch.randn(3, 1, 32, dtype=torch.bfloat16), cache=cache)
    per_layer = jm.kv_cache_bytes(cfg, 63, batch=3, dtype_bytes=2) // len(cfg.attention_layers())
    assert cache.nbytes() == per_layer


def test_reference_keeps_float64():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 5, 4, dtype=torch.float64) for _ in range(3))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(causal_attention(q, k, v, 0.5), want, rtol=1e-12, atol=1e-12)


def test_reserve_avoids_copies_and_append_checks_shapes():
    cache = KVCache(torch.zeros(2, 1, 3, 4), torch.zeros(2, 1, 3, 4))
    cache.reserve(10)
    storage = cache._k.data_ptr()
    for _ in range(7):
        cache.append(torch.ones(2, 1, 1, 4), torch.ones(2, 1, 1, 4))
    assert cache.capacity == 10 and cache.length == 10 and cache._k.data_ptr() == storage
    with pytest.raises(ValueError, match=r"new keys must have shape .* got \(3, 1, 1, 4\)"):
        cache.append(torch.ones(3, 1, 1, 4), torch.ones(3, 1, 1, 4))


def test_cache_grows_by_doubling():
    cache = KVCache(torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 4, 2))
    for _ in range(5):
        cache.append(torch.ones(1, 1, 1, 2), torch.ones(1, 1, 1, 2))
    assert cache.length == 9 and cache._k.shape[2] == 16 and cache.keys.shape == (1, 1, 9, 2)


def test_bad_input(attention_pair):
    ours, _ = attention_pair(4, 2)
    with pytest.raises(ValueError, match=r"hidden_size = 24, got \(2, 5\)"):
        ours(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="impl must be 'sdpa' or 'eager'"):
        JambaAttention(ours.config, impl="flash")


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_attention_dropout_in_training_only(impl):
    cfg = jm.JambaConfig(
        **BASE, hidden_size=24, num_attention_heads=4, num_key_value_heads=2, attention_dropout=0.5
    )
    torch.manual_seed(0)
    layer = JambaAttention(cfg, 0, impl=impl).eval()
    x = torch.randn(2, 7, 24)
    plain = layer(x)
    cfg.attention_dropout = 0.0  # read at every call
    torch.testing.assert_close(layer.train()(x), plain)
    cfg.attention_dropout = 0.5
    torch.manual_seed(1)
    dropped = layer(x)
    assert not torch.allclose(dropped, plain)  # half the attention weights are zeroed
    torch.manual_seed(1)
    torch.testing.assert_close(layer(x), dropped)  # the same mask for the same seed
    torch.testing.assert_close(layer.eval()(x), plain)

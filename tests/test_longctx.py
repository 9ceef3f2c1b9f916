"""jamba_min.longctx: the decode-cost measurement's keys, its bytes against the formulas, its
checks. No timing is asserted (a shared machine's speed is not a property of the code)."""

import pytest
import torch

import jamba_min as jm
from jamba_min import longctx

KEYS = {
    "context", "steps", "batch", "tokens_per_s", "step_s", "step_s_median", "prefill_s",
    "kv_bytes", "kv_allocated_bytes", "mamba_bytes", "cache_bytes",
}  # fmt: skip


@pytest.fixture(scope="module")
def models():
    """The three architectures of equal size, small enough for a unit test."""
    out = {}
    for arch, cfg in longctx.decode_configs(hidden_size=32, num_hidden_layers=8).items():
        torch.manual_seed(0)
        out[arch] = jm.JambaForCausalLM(cfg)
    return out


def test_configs_equal_size():
    configs = longctx.decode_configs()
    assert list(configs) == list(longctx.ARCHITECTURES)
    params = [jm.count_params(c)["total"] for c in configs.values()]
    assert max(params) / min(params) < 1.01
    assert [len(c.attention_layers()) for c in configs.values()] == [8, 1, 0]


@pytest.mark.parametrize("arch", longctx.ARCHITECTURES)
@pytest.mark.parametrize("context", [1, 37])
def test_bytes_equal_formulas(models, arch, context):
    model = models[arch]
    cfg = model.config
    r = longctx.decode_cost(model, context, steps=3, warmup=1, batch=2)
    assert set(r) == KEYS
    assert (r["context"], r["steps"], r["batch"]) == (context, 3, 2)
    assert r["tokens_per_s"] == 2 / r["step_s"] and r["step_s_median"] >= r["step_s"] > 0
    assert r["kv_bytes"] == jm.kv_cache_bytes(cfg, context, batch=2, dtype_bytes=4)
    assert r["mamba_bytes"] == jm.mamba_state_bytes(cfg, batch=2, dtype_bytes=4)
    assert r["cache_bytes"] == r["kv_bytes"] + r["mamba_bytes"]
    # reserved for the context and the 4 new tokens
    assert r["kv_allocated_bytes"] == jm.kv_cache_bytes(cfg, context + 4, batch=2, dtype_bytes=4)


def test_bfloat16_mamba_state_in_float32(models):
    """A 16-bit model keeps its conv window in 16 bits and h in float32."""
    cfg = models["hybrid 1:7"].config
    torch.manual_seed(0)
    model = jm.JambaForCausalLM(cfg).to(torch.bfloat16)
    r = longctx.decode_cost(model, 5, steps=1, warmup=0)
    assert r["kv_bytes"] == jm.kv_cache_bytes(cfg, 5, dtype_bytes=2)
    assert r["mamba_bytes"] == len(cfg.mamba_layers()) * cfg.mamba_d_inner * (
        2 * cfg.mamba_d_conv + 4 * cfg.mamba_d_state
    )


def test_time_steps_puts_the_cache_back(models):
    model = models["hybrid 1:7"]
    out = longctx.prefill(model, 6, room=2)
    before = longctx.held_bytes(out.cache)
    states = list(out.cache.layers)
    times = longctx.time_steps(model, out, steps=2, warmup=0)
    assert len(times) == 2
    assert longctx.held_bytes(out.cache) == before
    assert all(a is b for a, b in zip(out.cache.layers, states, strict=True))
    # the next step from the restored cache is the step from a fresh prefill's
    again = longctx.prefill(model, 6)
    token = out.logits[:, -1].argmax(-1, keepdim=True)
    with torch.inference_mode():
        a = model._forward(token, out.cache, False).logits
        b = model._forward(token, again.cache, False).logits
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"context": 0}, "context"),
        ({"context": -3}, "context"),
        ({"context": 2.0}, "context"),
        ({"steps": 0}, "steps"),
        ({"steps": True}, "steps"),
        ({"batch": 0}, "batch"),
        ({"warmup": -1}, "warmup"),
        ({"repeat": 0}, "repeat"),
    ],
)
def test_bad_arguments(models, kwargs, name):
    args = {"context": 4, **kwargs}
    with pytest.raises(ValueError, match=rf"^{name} must be an int >= "):
        longctx.decode_cost(models["mamba"], **args)

"""The Mamba mixer: parity with transformers' JambaMambaMixer, and recurrent decoding."""

import pytest
import torch
from transformers.models.jamba import modeling_jamba

import jamba_min as jm
from jamba_min.config import ACTIVATIONS, HIDDEN_ACTIVATIONS
from jamba_min.mamba import JambaMambaMixer, MambaState

CONFIGS = {
    "tiny": dict(hidden_size=24, mamba_d_state=8, mamba_d_conv=4, mamba_expand=2),
    "odd sizes, biases": dict(
        hidden_size=20, mamba_d_state=5, mamba_d_conv=3, mamba_expand=3, mamba_dt_rank=3,
        mamba_proj_bias=True, mamba_conv_bias=False,
    ),
}  # fmt: skip
BASE = dict(
    vocab_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    intermediate_size=16,
)


def config(name):
    return jm.JambaConfig(**BASE, **CONFIGS[name])


@pytest.fixture
def mixer_pair(hf_config):
    """``mixer_pair(name, dtype, seed)``: our mixer and transformers', with identical
    (randomised) weights."""

    def make(name, dtype=torch.float32, seed=0):
        cfg = config(name)
        torch.manual_seed(seed)
        ours = JambaMambaMixer(cfg).to(dtype)
        with torch.no_grad():  # move every parameter away from its initial value
            for p in ours.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        theirs = modeling_jamba.JambaMambaMixer(hf_config(cfg), layer_idx=0).to(dtype)
        theirs.load_state_dict(ours.state_dict())
        return ours.eval(), theirs.eval()

    return make


def test_parameter_names_and_shapes_match_transformers(hf_config):
    for name in CONFIGS:
        cfg = config(name)
        ours = {k: v.shape for k, v in JambaMambaMixer(cfg).state_dict().items()}
        theirs = {
            k: v.shape
            for k, v in modeling_jamba.JambaMambaMixer(hf_config(cfg), 0).state_dict().items()
        }
        assert ours == theirs


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("backend", ["ref", "parallel", "triton"])
def test_full_sequence_matches_transformers(mixer_pair, name, backend):
    ours, theirs = mixer_pair(name)
    ours.scan_backend = backend
    x = torch.randn(2, 13, ours.config.hidden_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_gradients_match_transformers(mixer_pair):
    # float32: transformers' scan casts B to float32 whatever the input dtype
    ours, theirs = mixer_pair("tiny")
    x = torch.randn(2, 9, ours.config.hidden_size)
    (ours(x) ** 2).sum().backward()
    (theirs(x) ** 2).sum().backward()
    their_grads = {name: p.grad for name, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        scale = their_grads[name].abs().max().item()
        torch.testing.assert_close(
            p.grad, their_grads[name], rtol=1e-4, atol=1e-5 * scale, msg=name
        )


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("L0", [1, 2, 7])
def test_prefill_then_steps_equals_full_forward(mixer_pair, name, L0):
    # float64 so that the only differences are rounding: tolerance 1e-10
    ours, _ = mixer_pair(name, dtype=torch.float64)
    x = torch.randn(3, L0 + 5, ours.config.hidden_size, dtype=torch.float64)
    with torch.no_grad():
        full = ours(x)
        y, state = ours(x[:, :L0], return_state=True)
        steps = [y]
        for t in range(L0, x.shape[1]):
            y_t, state = ours.step(x[:, t], state)
            steps.append(y_t[:, None])
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-10, atol=1e-10)
    assert state.conv.shape == (3, ours.d_inner, ours.d_conv)
    assert state.ssm.shape == (3, ours.d_inner, ours.d_state)


@pytest.mark.parametrize("name", CONFIGS)
def test_cached_decoding_matches_transformers(mixer_pair, hf_cache, name):
    ours, theirs = mixer_pair(name)
    x = torch.randn(2, 6 + 4, ours.config.hidden_size)
    # a one-layer cache whose layer 0 is a Mamba layer (the schedule puts attention at offset 1)
    one_layer = {"num_hidden_layers": 1, "attn_layer_offset": 1, "attn_layer_period": 2}
    cache = hf_cache(ours.config, **one_layer)
    with torch.no_grad():
        y, state = ours(x[:, :6], return_state=True)
        torch.testing.assert_close(y, theirs(x[:, :6], cache=cache), rtol=1e-5, atol=1e-5)
        for t in range(6, x.shape[1]):
            y_t, state = ours.step(x[:, t], state)
            torch.testing.assert_close(
                y_t, theirs(x[:, t : t + 1], cache=cache)[:, 0], rtol=1e-5, atol=1e-5
            )


def test_decoding_from_the_empty_state_equals_the_full_forward(mixer_pair):
    ours, _ = mixer_pair("tiny", dtype=torch.float64)
    x = torch.randn(2, 6, ours.config.hidden_size, dtype=torch.float64)
    state, outs = ours.empty_state(2), []
    with torch.no_grad():
        for t in range(6):
            y_t, state = ours.step(x[:, t], state)
            outs.append(y_t)
        torch.testing.assert_close(torch.stack(outs, 1), ours(x), rtol=1e-10, atol=1e-12)


def test_step_checks_the_state(mixer_pair):
    ours, _ = mixer_pair("tiny")
    with pytest.raises(
        ValueError, match=r"state.conv must have shape \(3, 48, 4\), got \(2, 48, 4\)"
    ):
        ours.step(torch.zeros(3, 24), ours.empty_state(2))


def test_step_does_not_modify_the_state_in_place(mixer_pair):
    ours, _ = mixer_pair("tiny")
    x = torch.randn(2, 5, ours.config.hidden_size)
    with torch.no_grad():
        _, state = ours(x, return_state=True)
        before = MambaState(state.conv.clone(), state.ssm.clone())
        ours.step(x[:, 0], state)
    assert torch.equal(state.conv, before.conv) and torch.equal(state.ssm, before.ssm)


def test_initialisation_follows_mamba():
    mixer = JambaMambaMixer(jm.JambaConfig(**BASE, hidden_size=64))
    dt = torch.nn.functional.softplus(mixer.dt_proj.bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    torch.testing.assert_close(-torch.exp(mixer.A_log), -torch.arange(1.0, 17.0).expand(128, 16))
    assert torch.equal(mixer.D, torch.ones(128))


def test_activations_cover_the_config():
    assert set(ACTIVATIONS) == set(HIDDEN_ACTIVATIONS)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: m(torch.zeros(2, 5)),
            r"must have shape \(batch, L, hidden_size\) with hidden_size = 24, got \(2, 5\)",
        ),
        (lambda m: m(torch.zeros(2, 5, 23)), "hidden_size = 24, got \\(2, 5, 23\\)"),
        (
            lambda m: m.step(torch.zeros(2, 1, 24), None),
            r"step: hidden_states must have shape \(batch, hidden_size\)",
        ),
    ],
)
def test_bad_input(mixer_pair, call, message):
    with pytest.raises(ValueError, match=message):
        call(mixer_pair("tiny")[0])


@pytest.mark.parametrize("K", [1, 2, 4])
@pytest.mark.parametrize("L", [1, 3, 9])
@pytest.mark.parametrize("bias", [True, False])
def test_causal_conv1d_equals_nn_conv1d(K, L, bias):
    """The time-major depthwise conv and its hand-written backward against nn.Conv1d."""
    from jamba_min.ops import causal_conv1d

    torch.manual_seed(K * 100 + L)
    c = 5
    conv = torch.nn.Conv1d(c, c, K, groups=c, padding=K - 1, bias=bias).double()
    u = torch.randn(2, L, 2 * c, dtype=torch.float64)[..., :c].requires_grad_()  # strided view
    ours = causal_conv1d(u, conv.weight[:, 0], conv.bias)
    ref = conv(u.transpose(1, 2))[..., :L].transpose(1, 2)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    params = [u, conv.weight] + ([conv.bias] if bias else [])
    ours_grads = torch.autograd.grad(ours, params, g)
    ref_grads = torch.autograd.grad(ref, params, g)
    for a, b in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    w, bb = conv.weight[:, 0].detach().requires_grad_(), None
    if bias:
        bb = conv.bias.detach().requires_grad_()
    x = u.detach().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, w, *b: causal_conv1d(x, w, *b), (x, w, *([bb] if bias else []))
    )


def test_causal_conv1d_half_precision_computes_in_float32():
    from jamba_min.ops import causal_conv1d

    u = torch.randn(1, 6, 3).bfloat16()
    w, b = torch.randn(3, 4), torch.randn(3)
    ours = causal_conv1d(u, w.bfloat16(), b.bfloat16())
    assert ours.dtype == torch.bfloat16
    ref = causal_conv1d(u.float(), w.bfloat16().float(), b.bfloat16().float())
    torch.testing.assert_close(ours.float(), ref, rtol=1e-2, atol=1e-2)


def test_causal_conv1d_gradient_of_the_input_alone():
    """Frozen weights: only the input's gradient is computed, and it is right."""
    from jamba_min.ops import causal_conv1d

    u = torch.randn(2, 7, 3, dtype=torch.float64, requires_grad=True)
    w, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    (ours,) = torch.autograd.grad(causal_conv1d(u, w, b).square().sum(), u)
    ref_out = torch.nn.functional.conv1d(u.transpose(1, 2), w[:, None], b, padding=3, groups=3)
    (ref,) = torch.autograd.grad(ref_out[..., :7].square().sum(), u)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)

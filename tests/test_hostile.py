"""Hostile and careless inputs: checkpoints, saving, generation, caches (issue 12).

Each test builds its own tiny model or checkpoint folder; nothing is downloaded. A checkpoint
may only read files inside its folder, a save never leaves old and new weights mixed, a small
input never costs a large allocation, and every misuse gets a ValueError (or, for autograd, a
RuntimeError) that says what was expected.
"""

import json
import os

import pytest
import torch
from configs import BASE
from safetensors.torch import load_file, save_file

import jamba_min as jm
from jamba_min.attention import KVCache
from jamba_min.checkpoint import _split_experts
from jamba_min.ops import causal_conv1d, random_scan_inputs

INDEX = "model.safetensors.index.json"
JAMBA_LIKE = dict(BASE, num_hidden_layers=8, attn_layer_period=4, attn_layer_offset=2)
IDS = torch.randint(0, BASE["vocab_size"], (2, 7), generator=torch.Generator().manual_seed(0))


def model(seed=0, **changes) -> jm.JambaForCausalLM:
    torch.manual_seed(seed)
    return jm.JambaForCausalLM(jm.JambaConfig(**{**JAMBA_LIKE, **changes})).eval()


def logits(m, ids=IDS):
    with torch.no_grad():
        return m(ids).logits


def save_sharded(m, folder, shards=2):
    """A sharded checkpoint as transformers writes one: shards plus an index."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(m.config.to_dict()))
    sd = {k: v.contiguous() for k, v in _split_experts(m.state_dict()).items()}
    keys = sorted(sd)
    weight_map = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: sd[k] for k in keys[s::shards]}
        save_file(part, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    (folder / INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return weight_map


# --------------------------------------------------------------------------- 1. reading only inside
def test_index_cannot_point_outside_the_folder(tmp_path):
    m = model()
    ckpt, elsewhere = tmp_path / "ckpt", tmp_path / "elsewhere"
    weight_map = save_sharded(m, ckpt)
    elsewhere.mkdir()
    first = sorted(set(weight_map.values()))[0]
    os.replace(ckpt / first, elsewhere / "x.safetensors")
    for outside in ["../elsewhere/x.safetensors", str(elsewhere / "x.safetensors"), "/etc/passwd"]:
        hostile = {k: outside if v == first else v for k, v in weight_map.items()}
        (ckpt / INDEX).write_text(json.dumps({"weight_map": hostile}))
        with pytest.raises(ValueError, match="resolves outside") as err:
            jm.from_pretrained(ckpt)
        assert "root:" not in str(err.value)  # the error does not echo what the file holds


def test_symlinks_must_stay_inside_the_folder(tmp_path):
    m = model()
    m.save_pretrained(tmp_path / "real")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    # links to files outside: refused, for the weights and for the config alike
    (ckpt / "config.json").symlink_to(tmp_path / "real" / "config.json")
    (ckpt / "model.safetensors").symlink_to(tmp_path / "real" / "model.safetensors")
    with pytest.raises(ValueError, match=r"'config\.json' resolves outside"):
        jm.from_pretrained(ckpt)
    (ckpt / "config.json").unlink()
    os.replace(tmp_path / "real" / "config.json", ckpt / "config.json")
    with pytest.raises(ValueError, match=r"'model\.safetensors' resolves outside"):
        jm.from_pretrained(ckpt)
    # a link that stays inside the folder is fine
    (ckpt / "model.safetensors").unlink()
    os.replace(tmp_path / "real" / "model.safetensors", ckpt / "weights.bin.safetensors")
    (ckpt / "model.safetensors").symlink_to("weights.bin.safetensors")
    assert torch.equal(logits(jm.from_pretrained(ckpt)), logits(m))


# --------------------------------------------------------------------------- 2. saving
def test_save_replaces_a_sharded_checkpoint_and_keeps_other_files(tmp_path):
    old, new = model(seed=0), model(seed=1)
    weight_map = save_sharded(old, tmp_path)
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "tokenizer.json").write_text("{}")
    assert torch.equal(logits(jm.from_pretrained(tmp_path)), logits(old))
    new.save_pretrained(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["README.md", "config.json", "model.safetensors", "tokenizer.json"]
    assert not any((tmp_path / shard).exists() for shard in weight_map.values())
    assert torch.equal(logits(jm.from_pretrained(tmp_path)), logits(new))


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    old = model(seed=0)
    old.save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_save_file(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", broken_save_file)
    other = model(seed=1, vocab_size=50)  # another config: a mix would not load either
    with pytest.raises(OSError, match="No space left"):
        other.save_pretrained(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary left
    monkeypatch.undo()
    assert torch.equal(logits(jm.from_pretrained(tmp_path)), logits(old))


def test_save_needs_a_folder_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = model()
    for bad in ["", "  ", None, 3]:
        with pytest.raises(ValueError, match="save_pretrained: path must name a folder"):
            m.save_pretrained(bad)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        m.save_pretrained(tmp_path / "a-file")


# --------------------------------------------------------------------------- 3. bounded cost
def test_a_huge_expert_index_is_an_unexpected_key(tmp_path):
    m = model()
    m.save_pretrained(tmp_path)
    sd = load_file(tmp_path / "model.safetensors")
    sd["model.layers.1.feed_forward.experts.1000000000.gate_proj.weight"] = torch.zeros(1)
    sd["model.layers.1.feed_forward.experts.99999999999999999999.up_proj.weight"] = torch.zeros(1)
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="unexpected keys \\(2\\):") as err:
        jm.from_pretrained(tmp_path)
    assert "experts.1000000000.gate_proj" in str(err.value)
    with pytest.raises(ValueError, match="unexpected keys \\(2\\):"):
        jm.JambaForCausalLM(m.config).load_hf_state_dict(sd)


def test_configs_far_larger_than_their_weights_are_refused_before_building(tmp_path):
    m = model()
    m.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 100_000}))
    with pytest.raises(ValueError, match="num_hidden_layers = 100000, but the weights hold layers"):
        jm.from_pretrained(tmp_path)
    # terabytes of weights if built for real; on the meta device a shape check refuses them
    huge = {**config, "hidden_size": 2**16, "intermediate_size": 2**20}
    (tmp_path / "config.json").write_text(json.dumps(huge))
    with pytest.raises(ValueError, match="shape mismatches") as err:
        jm.from_pretrained(tmp_path)
    assert "missing keys" not in str(err.value)  # the per-expert names are all there
    # and a config asking for far more experts than the file holds lists a few, then counts
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_experts": 10**8}))
    with pytest.raises(ValueError, match=r"missing keys \(\d+\):") as err:
        jm.from_pretrained(tmp_path)
    message = str(err.value)
    assert "experts.4.gate_proj.weight" in message and "more" in message and len(message) < 10_000


def test_generate_grows_the_cache_as_tokens_arrive(monkeypatch):
    m = model()
    asked = []
    reserve = KVCache.reserve
    monkeypatch.setattr(KVCache, "reserve", lambda self, n: asked.append(n) or reserve(self, n))
    prompt = IDS[:, :5]
    out = m.generate(prompt, max_new_tokens=10**8, eos_token_id=list(range(m.config.vocab_size)))
    assert out.shape == (2, 6)  # every token ends a row: one step, then stop
    assert max(asked) <= 2 * prompt.shape[1]  # nothing reserved for 10⁸ tokens up front
    asked.clear()
    m.generate(prompt, max_new_tokens=40)
    assert max(asked) >= 45 and len(asked) <= 4 * 3 * len(m.config.attention_layers())


# --------------------------------------------------------------------------- 4. generate
def test_generation_stops_when_every_row_has_ended():
    m = model()
    prompt = torch.randint(0, 97, (3, 4), generator=torch.Generator().manual_seed(2))
    full = m.generate(prompt, max_new_tokens=8)[:, 4:]
    eos = sorted({int(full[0, 1]), int(full[1, 2]), int(full[2, 0])})
    out = m.generate(prompt, max_new_tokens=8, eos_token_id=eos)
    ends = [next(t for t in range(8) if int(full[r, t]) in eos) for r in range(3)]
    assert out.shape == (3, 4 + max(ends) + 1)
    for r, end in enumerate(ends):
        new = out[r, 4:]
        assert torch.equal(new[: end + 1], full[r, : end + 1])
        assert (new[end:] == full[r, end]).all()  # a finished row repeats its end token
    single = m.generate(prompt, max_new_tokens=8, eos_token_id=eos[0])
    assert torch.equal(single, m.generate(prompt, max_new_tokens=8, eos_token_id=[eos[0]]))


@pytest.mark.parametrize("eos", ["2", 2.0, True, [], [1, "a"], [97], -1, {2: 1}, (1, None)])
def test_bad_eos_token_ids(eos):
    with pytest.raises(ValueError, match=r"eos_token_id must be an int or a non-empty list"):
        model().generate(IDS, 2, eos_token_id=eos)


def test_training_flag_is_restored_when_generation_raises(monkeypatch):
    m = model().train()
    calls = []

    def fail_second(x):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return torch.nn.functional.linear(x, m.lm_head.weight)

    monkeypatch.setattr(m.lm_head, "forward", fail_second)
    with pytest.raises(RuntimeError, match="interrupted"):
        m.generate(IDS, 4)
    assert m.training


@pytest.mark.parametrize("t", [float("nan"), float("inf"), -1.0, "1", None, True])
def test_bad_temperatures(t):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, or 0"):
        model().generate(IDS, 2, temperature=t)


@pytest.mark.parametrize("t", [1e-40, 1e-300, 5e-324])
def test_a_vanishing_temperature_is_greedy(t):
    m = model()
    greedy = m.generate(IDS, 5)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(m.generate(IDS, 5, temperature=t, generator=g), greedy)
    assert torch.equal(m.generate(IDS, 5, temperature=t, top_k=3, top_p=0.5, generator=g), greedy)


# --------------------------------------------------------------------------- 5. clear errors
def test_input_id_dtypes():
    m = model()
    want = logits(m)
    for dtype in (torch.uint8, torch.int16, torch.int32):
        assert torch.equal(logits(m, IDS.to(dtype)), want)
        assert torch.equal(m.generate(IDS.to(dtype), 3), m.generate(IDS, 3))
    for bad in (IDS.bool(), IDS.float(), IDS.to(torch.complex64)):
        with pytest.raises(ValueError, match="input_ids must be an integer tensor"):
            m(bad)


@pytest.mark.parametrize("shape", [(0, 5), (2, 0), (0, 0)])
def test_empty_inputs(shape):
    m = model()
    ids = torch.zeros(shape, dtype=torch.long)
    with pytest.raises(ValueError, match="at least one token in at least one row"):
        m(ids)
    with pytest.raises(ValueError, match="at least one token in at least one row"):
        m.generate(ids, 3)


@pytest.mark.parametrize(
    "index, message",
    [
        ("{not json", r"model\.safetensors\.index\.json in .* is not valid JSON \(line 1"),
        ("[1, 2]", "must hold a 'weight_map'.*got list"),
        ('{"metadata": {}}', "must hold a 'weight_map'.*got NoneType"),
        ('{"weight_map": ["a.safetensors"]}', "must hold a 'weight_map'.*got list"),
        ('{"weight_map": {}}', "has an empty weight_map"),
        ('{"weight_map": {"lm_head.weight": 7}}', r"weight_map\['lm_head\.weight'\] must be a"),
        ('{"weight_map": {"lm_head.weight": "absent.safetensors"}}', "is not a file in"),
    ],
)
def test_malformed_index(tmp_path, index, message):
    save_sharded(model(), tmp_path)
    (tmp_path / INDEX).write_text(index)
    with pytest.raises(ValueError, match=message):
        jm.from_pretrained(tmp_path)


def test_index_and_shards_must_agree(tmp_path):
    m = model()
    weight_map = save_sharded(m, tmp_path)
    first, second = sorted(set(weight_map.values()))
    key = next(k for k, v in weight_map.items() if v == first)
    # the same tensor in two shards: which one wins must not depend on the order of reading
    sd = load_file(tmp_path / second)
    save_file({**sd, key: torch.zeros_like(m.state_dict().get(key, torch.zeros(1)))},
              str(tmp_path / second))  # fmt: skip
    with pytest.raises(ValueError, match=f"tensor '{key}' is stored twice"):
        jm.from_pretrained(tmp_path)
    save_file(sd, str(tmp_path / second))
    moved = {**weight_map, key: second}  # the index names the wrong shard
    (tmp_path / INDEX).write_text(json.dumps({"weight_map": moved}))
    with pytest.raises(ValueError, match="disagrees with its shards about 1 tensor"):
        jm.from_pretrained(tmp_path)


@pytest.mark.parametrize("text", ["{oops", "[1]", '"a string"', "\xff\xfe"])
def test_config_json_that_is_not_a_config(tmp_path, text):
    model().save_pretrained(tmp_path)
    (tmp_path / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=r"config\.json in "):  # names the file and folder
        jm.from_pretrained(tmp_path)


def test_dtype_by_name_and_mixed_dtypes(tmp_path):
    m = model()
    m.save_pretrained(tmp_path)
    loaded = jm.from_pretrained(tmp_path, dtype="float64")
    assert {p.dtype for p in loaded.parameters()} == {torch.float64}
    assert jm.from_pretrained(tmp_path, dtype="torch.bfloat16").lm_head.weight.dtype == (
        torch.bfloat16
    )
    for bad in ("int64", "nonsense", "Tensor", torch.int32, 3):
        with pytest.raises(ValueError, match="from_pretrained: dtype must be a floating-point"):
            jm.from_pretrained(tmp_path, dtype=bad)
    # tensors stored in two dtypes, the first of them float16: the config's dtype decides
    sd = load_file(tmp_path / "model.safetensors")
    first = sorted(sd)[0]
    save_file({k: v.half() if k == first else v for k, v in sd.items()},
              str(tmp_path / "model.safetensors"))  # fmt: skip
    assert {p.dtype for p in jm.from_pretrained(tmp_path).parameters()} == {torch.float32}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["dtype"] == "float32"  # save_pretrained names it
    del config["dtype"]  # without a name, the widest stored dtype: nothing is rounded
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert {p.dtype for p in jm.from_pretrained(tmp_path).parameters()} == {torch.float32}
    (tmp_path / "config.json").write_text(json.dumps({**config, "torch_dtype": "float16"}))
    assert {p.dtype for p in jm.from_pretrained(tmp_path).parameters()} == {torch.float16}
    (tmp_path / "config.json").write_text(json.dumps({**config, "dtype": "int8"}))
    with pytest.raises(ValueError, match=r"config\.json in .*: dtype must be a floating-point"):
        jm.from_pretrained(tmp_path)


def test_integer_tensors_in_a_checkpoint(tmp_path):
    m = model()
    m.save_pretrained(tmp_path)
    sd = load_file(tmp_path / "model.safetensors")
    sd["model.final_layernorm.weight"] = sd["model.final_layernorm.weight"].long()
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="stored as I64; Jamba's weights are floating point"):
        jm.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"must be a floating-point tensor, got torch\.int64"):
        m.load_hf_state_dict(sd)


@pytest.mark.parametrize("backend", ["parallel", "ref"])
def test_double_backward_through_the_scan(backend):
    inputs = random_scan_inputs(1, 4, 6, 3, D=False, z=False, delta_bias=False)
    u = inputs["u"].requires_grad_()
    inputs["delta"].requires_grad_()
    y = jm.selective_scan(**inputs, delta_softplus=True, backend=backend)
    if backend == "ref":  # autograd differentiates the reference as often as asked
        (gu,) = torch.autograd.grad(y.sum(), u, create_graph=True)
        gu.sum().backward()
        return
    with pytest.raises(RuntimeError, match=r"backend='parallel'\) has a hand-written backward"):
        torch.autograd.grad(y.sum(), u, create_graph=True)
    (gu,) = torch.autograd.grad(y.sum(), u)  # first derivatives as usual
    assert gu.shape == u.shape


def test_double_backward_through_the_norm_and_the_conv():
    x = torch.randn(2, 5, 8, requires_grad=True)
    w = torch.randn(8, 4, requires_grad=True)
    for what, y in [("RMSNorm", jm.RMSNorm(8)(x)), ("causal_conv1d", causal_conv1d(x, w))]:
        with pytest.raises(RuntimeError, match=f"{what}.* first derivatives only"):
            torch.autograd.grad((y**2).sum(), x, create_graph=True)


def test_unknown_scan_backend_at_construction():
    with pytest.raises(ValueError, match="scan_backend must be one of 'ref', 'parallel'"):
        jm.JambaMambaMixer(jm.JambaConfig(**BASE), scan_backend="fast")


def test_config_edited_after_building():
    m = model()
    m.config.router_aux_loss_coef = 0.5  # read at run time: allowed
    assert torch.equal(logits(m), logits(model()))
    for field, value in [("rms_norm_eps", 1e-2), ("hidden_size", 64), ("attn_layer_offset", 1)]:
        m = model()
        setattr(m.config, field, value)
        with pytest.raises(ValueError, match=f"edited after the model was built \\({field} "):
            m(IDS)
        with pytest.raises(ValueError, match="edited after the model was built"):
            m.generate(IDS, 2)
    m = model()
    m.config.router_aux_loss_coef = -1.0
    with pytest.raises(ValueError, match="router_aux_loss_coef must be a number >= 0"):
        m(IDS)


def test_a_cache_from_another_model():
    m, other = model(), model(attn_layer_offset=1)
    cache = other(IDS, return_cache=True).cache
    with pytest.raises(ValueError, match="cache must be the HybridCache this model returned"):
        m(IDS[:, :1], cache=cache)


# --------------------------------------------------------------------------- 6. atomic steps
def test_a_failing_step_leaves_the_cache_as_it_was(monkeypatch):
    m = model()
    with torch.no_grad():
        cache = m(IDS, return_cache=True).cache
        before = [(s.length, s.keys.clone()) if isinstance(s, KVCache) else (s.conv, s.ssm)
                  for s in cache.layers]  # fmt: skip
        last = m.model.layers[-1]
        assert not last.is_attention and m.model.layers[2].is_attention  # fails after attention
        monkeypatch.setattr(last.mamba, "step", lambda *a: (_ for _ in ()).throw(MemoryError()))
        nxt = IDS[:, :1]
        with pytest.raises(MemoryError):
            m(nxt, cache=cache)
        for s, saved in zip(cache.layers, before, strict=True):
            if isinstance(s, KVCache):
                assert s.length == saved[0] and torch.equal(s.keys, saved[1])
            else:
                assert s.conv is saved[0] and s.ssm is saved[1]
        monkeypatch.undo()
        resumed = m(nxt, cache=cache).logits
        fresh = m(nxt, cache=m(IDS, return_cache=True).cache).logits
    assert torch.equal(resumed, fresh)

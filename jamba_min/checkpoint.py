"""Hugging Face checkpoints, safetensors only (chapter 8).

Two layouts of the experts exist in the wild. The published Jamba checkpoints store every expert
as its own MLP (``…feed_forward.experts.{j}.gate_proj.weight``, ``up_proj``, ``down_proj``);
transformers ≥ 5 fuses them (``…experts.gate_up_proj`` ``(n, 2I, d)``, ``…experts.down_proj``
``(n, d, I)``), which is also how :class:`~jamba_min.moe.JambaSparseMoeBlock` stores them.
:func:`load_hf_state_dict` and :func:`from_pretrained` accept both; :func:`save_pretrained`
writes the published one.

Checkpoints come from strangers, so loading trusts nothing in the folder:

* weights are read with safetensors, never with pickle: a checkpoint cannot run code;
* every file read (``config.json``, the index, each shard) must resolve inside the folder, after
  symlinks;
* names and shapes are checked against the config before any weight is read: the model is first
  built on the ``meta`` device, which allocates nothing, and only the files' headers are read;
* then each tensor is read on its own, straight into the parameter it fills.

Saving writes temporary files in the folder and renames them into place, so a failed save leaves
the previous checkpoint as it was; the index and shards of a previous sharded checkpoint go.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import checkpoint_io as files
from .config import JambaConfig

# The model imports this module, not the other way round: ``model`` below is a JambaForCausalLM
# (or anything with its ``config`` and state-dict names), and ``model_class`` its class.

__all__ = ["load_hf_state_dict", "load_pretrained", "save_pretrained"]

# an expert or layer index is a plain decimal number of at most 9 digits; nothing else fits
_PER_EXPERT = re.compile(
    r"^(.*\.experts)\.(0|[1-9]\d{0,8})\.(gate_proj|up_proj|down_proj)\.weight$"
)
_LAYER = re.compile(r"^model\.layers\.(0|[1-9]\d{0,8})\.")


# --------------------------------------------------------------------------- the two layouts
def _split_experts(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The fused expert tensors → the published per-expert keys."""
    out = {}
    for key, value in sd.items():
        if key.endswith(".experts.gate_up_proj"):
            prefix = key[: -len(".gate_up_proj")]
            for j, w in enumerate(value):
                gate, up = w.chunk(2)
                out[f"{prefix}.{j}.gate_proj.weight"] = gate
                out[f"{prefix}.{j}.up_proj.weight"] = up
        elif key.endswith(".experts.down_proj"):
            prefix = key[: -len(".down_proj")]
            for j, w in enumerate(value):
                out[f"{prefix}.{j}.down_proj.weight"] = w
        else:
            out[key] = value
    return out


def _expert_parts(name: str) -> tuple[str, ...]:
    """The per-expert weights that a fused expert tensor ``name`` is made of (none for others)."""
    if name.endswith(".experts.gate_up_proj"):
        return ("gate_proj", "up_proj")
    return ("down_proj",) if name.endswith(".experts.down_proj") else ()


def _target(own: Mapping[str, Tensor], key: str, given: Mapping) -> tuple[str, Tensor] | None:
    """The model tensor that checkpoint entry ``key`` fills, with its name: for a per-expert key,
    a view of the fused tensor. None when the model has no such weight."""
    if key in own:
        return key, own[key]
    m = _PER_EXPERT.match(key)
    if m is None:
        return None
    prefix, j, part = m.group(1), int(m.group(2)), m.group(3)
    fused = f"{prefix}.down_proj" if part == "down_proj" else f"{prefix}.gate_up_proj"
    if fused not in own or fused in given or j >= own[fused].shape[0]:
        return None  # no such layer, both layouts at once, or no such expert
    w = own[fused][j]
    if part != "down_proj":
        half = w.shape[0] // 2
        w = w[:half] if part == "gate_proj" else w[half:]
    return fused, w


def _missing_parts(prefix: str, n: int, parts: tuple[str, ...], given: Mapping) -> Iterator[str]:
    """The per-expert names of ``prefix`` that ``given`` lacks, one at a time."""
    for j in range(n):
        for p in parts:
            if f"{prefix}.{j}.{p}.weight" not in given:
                yield f"{prefix}.{j}.{p}.weight"


def _fit(model: nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Tensor]:
    """Each checkpoint name → the model tensor (or view) it fills.

    ``shapes``: the checkpoint's names and shapes, either expert layout. Missing names, unexpected
    names and shape mismatches are collected and raised together in one ``ValueError``; names are
    generated lazily, so a config that asks for very many experts costs nothing to report.
    """
    own = model.state_dict()
    if model.config.tie_word_embeddings:
        own.pop("lm_head.weight", None)  # the embedding's; a saved copy is ignored
        shapes = {k: v for k, v in shapes.items() if k != "lm_head.weight"}
    targets, unexpected, mismatched, filled = {}, [], [], Counter()
    for key, shape in shapes.items():
        hit = _target(own, key, shapes)
        if hit is None:
            unexpected.append(key)
            continue
        name, tensor = hit
        filled[name] += 1
        if tuple(shape) == tuple(tensor.shape):
            targets[key] = tensor
        else:
            mismatched.append(f"{key}: checkpoint {tuple(shape)}, model {tuple(tensor.shape)}")
    missing_count, missing = 0, []
    for name, tensor in own.items():
        parts = () if name in shapes else _expert_parts(name)
        need = tensor.shape[0] * len(parts) if parts else 1
        if filled[name] == need:
            continue
        if filled[name] == 0:  # nothing of it: name it as the model does
            missing_count += 1
            missing.append([name])
            continue
        missing_count += need - filled[name]
        missing.append(_missing_parts(name.rpartition(".")[0], tensor.shape[0], parts, shapes))
    problems = [
        ("missing keys", missing_count, itertools.chain.from_iterable(missing)),
        ("unexpected keys", len(unexpected), iter(sorted(unexpected))),
        ("shape mismatches", len(mismatched), iter(sorted(mismatched))),
    ]
    if missing_count or unexpected or mismatched:
        lines = []
        for title, count, items in problems:
            if count:
                shown = list(itertools.islice(items, files.SHOWN))
                shown += [f"… and {count - len(shown)} more"] if count > len(shown) else []
                lines.append(f"{title} ({count}):" + "".join(f"\n    {i}" for i in shown))
        raise ValueError("checkpoint does not fit the model:\n  " + "\n  ".join(lines))
    return targets


def load_hf_state_dict(model: nn.Module, sd: Mapping[str, Tensor]) -> None:
    """Load a transformers-style state dict (either expert layout) into ``model``, in place.

    Missing keys, unexpected keys and shape mismatches are collected and raised together in one
    ``ValueError`` before anything is copied. With tied embeddings a saved ``lm_head.weight`` is
    ignored. Values are cast to the model's dtype.
    """
    if not isinstance(sd, Mapping):
        raise ValueError(f"state dict must be a mapping of names to tensors, got {type(sd)}")
    for key, value in sd.items():
        if not isinstance(value, Tensor) or not value.is_floating_point():
            got = value.dtype if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"state dict entry {key!r} must be a floating-point tensor, got {got}")
    targets = _fit(model, {k: tuple(v.shape) for k, v in sd.items()})
    with torch.no_grad():
        for key, tensor in targets.items():
            tensor.copy_(sd[key])


# --------------------------------------------------------------------------- a folder
def _as_dtype(value: Any, what: str) -> torch.dtype:
    """A floating-point torch dtype, from a dtype or its name (``"bfloat16"``)."""
    dtype = value
    if isinstance(value, str):
        dtype = getattr(torch, value.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"{what} must be a floating-point dtype such as torch.float32 or 'bfloat16', "
            f"got {value!r}"
        )
    return dtype


def _check_layers(config: JambaConfig, keys: Iterable[str]) -> None:
    """The weights hold exactly the layers the config names (checked before building anything:
    a config can ask for a huge model that a small file does not hold)."""
    found = {int(m.group(1)) for k in keys if (m := _LAYER.match(k))}
    n = config.num_hidden_layers
    if found != set(range(n)):
        held = f"layers {min(found)} to {max(found)} ({len(found)} in all)" if found else "none"
        raise ValueError(
            f"{files.CONFIG} says num_hidden_layers = {n}, but the weights hold {held}"
        )


def load_pretrained(
    model_class: type[nn.Module], path: str | Path, dtype: torch.dtype | str | None = None
) -> nn.Module:
    """A ``model_class`` model (``JambaForCausalLM.from_pretrained``) from a local folder:
    ``config.json`` plus ``model.safetensors`` or a sharded ``model.safetensors.index.json`` with
    its shards, either expert layout.

    ``dtype`` (a torch dtype or its name) casts the weights. Without it the model takes the dtype
    that ``config.json`` names (``dtype`` or ``torch_dtype``), else the one the tensors are stored
    in; tensors stored in several dtypes, with no dtype named, load in the widest of them.
    Every problem raises ``ValueError``; nothing outside the folder is read.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(
            f"from_pretrained: path must be a str or a Path, got {type(path).__name__}"
        )
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"from_pretrained: {folder} is not a folder")
    if dtype is not None:
        dtype = _as_dtype(dtype, "from_pretrained: dtype")
    if not (folder / files.CONFIG).exists() and not (folder / files.CONFIG).is_symlink():
        raise ValueError(f"from_pretrained: {folder} has no {files.CONFIG}")
    raw = files.read_json(folder, files.CONFIG)
    try:
        config = JambaConfig.from_dict(raw)
    except ValueError as err:
        raise ValueError(f"{files.CONFIG} in {folder}: {err}") from None
    header = files.read_headers(folder, *files.shards(folder))
    _check_layers(config, header)
    if dtype is None:
        named = raw.get("dtype") or raw.get("torch_dtype")
        if named is not None and named != "auto":
            dtype = _as_dtype(named, f"{files.CONFIG} in {folder}: dtype")
        else:
            stored = {files.STORED_DTYPES[e.dtype] for e in header.values()} or {torch.float32}
            dtype = functools.reduce(torch.promote_types, stored)
    shapes = {key: entry.shape for key, entry in header.items()}
    with torch.device("meta"):  # names and shapes only: no memory, however large the config
        model = model_class(config)
    _fit(model, shapes)  # raises before anything is allocated
    model.to(dtype).to_empty(device="cpu")  # allocate; every tensor is filled below
    model.tie_weights()  # to_empty gave the embedding and a tied head a tensor each
    targets = _fit(model, shapes)
    from safetensors import safe_open

    by_file = itertools.groupby(sorted(targets, key=lambda k: header[k].path),
                                key=lambda k: header[k].path)  # fmt: skip
    with torch.no_grad():
        for file, keys in by_file:
            with safe_open(str(file), "pt") as f:
                for key in keys:  # one tensor at a time, straight into its parameter
                    targets[key].copy_(f.get_tensor(key))
    return model.eval()


def save_pretrained(model: nn.Module, path: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` in the published (per-expert) layout.

    Both are written to temporary files in the folder first and then renamed into place, so an
    error while writing leaves the folder's previous checkpoint untouched. A previous sharded
    checkpoint (its index and the shards it lists) is removed; other files stay.
    """
    from safetensors.torch import save_file

    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValueError(
            f"save_pretrained: path must name a folder (a non-empty str or Path), got {path!r}"
        )
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"save_pretrained: {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    sd = _split_experts(model.state_dict())
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    config = model.config.to_dict()
    config["dtype"] = str(model.model.embed_tokens.weight.dtype).removeprefix("torch.")

    def write_weights(file: str) -> None:
        save_file({k: v.contiguous() for k, v in sd.items()}, file, metadata={"format": "pt"})

    files.write_checkpoint(folder, write_weights, json.dumps(config, indent=2))

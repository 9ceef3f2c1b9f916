"""Hugging Face checkpoints, safetensors only (chapter 8).

Two layouts of the experts exist in the wild. The published Jamba checkpoints store every expert
as its own MLP (``…feed_forward.experts.{j}.gate_proj.weight``, ``up_proj``, ``down_proj``);
transformers ≥ 5 fuses them (``…experts.gate_up_proj`` ``(n, 2I, d)``, ``…experts.down_proj``
``(n, d, I)``), which is also how :class:`~jamba_min.moe.JambaSparseMoeBlock` stores them.
:func:`load_hf_state_dict` accepts both; :func:`save_pretrained` writes the published one.

Weights are read with safetensors, never with pickle: a checkpoint cannot run code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from .config import JambaConfig
from .model import JambaForCausalLM

__all__ = ["from_pretrained", "load_hf_state_dict", "save_pretrained"]

_PER_EXPERT = re.compile(r"^(.*\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")


def _fuse_experts(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Per-expert keys → the fused ``gate_up_proj`` / ``down_proj`` tensors; others unchanged."""
    out, experts = {}, {}
    for key, value in sd.items():
        m = _PER_EXPERT.match(key)
        if m:
            experts.setdefault(m.group(1), {})[(int(m.group(2)), m.group(3))] = value
        else:
            out[key] = value
    for prefix, parts in experts.items():
        n = 1 + max(j for j, _ in parts)
        names = ("gate_proj", "up_proj", "down_proj")
        missing = [
            f"{prefix}.{j}.{w}.weight" for j in range(n) for w in names if (j, w) not in parts
        ]
        if missing:
            raise ValueError(f"checkpoint has experts with missing weights: {missing}")
        out[f"{prefix}.gate_up_proj"] = torch.stack(
            [torch.cat([parts[j, "gate_proj"], parts[j, "up_proj"]]) for j in range(n)]
        )
        out[f"{prefix}.down_proj"] = torch.stack([parts[j, "down_proj"] for j in range(n)])
    return out


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


def load_hf_state_dict(model: JambaForCausalLM, sd: Mapping[str, Tensor]) -> None:
    """Load a transformers-style state dict (either expert layout) into ``model``, in place.

    Missing keys, unexpected keys and shape mismatches are collected and raised together in one
    ``ValueError``. With tied embeddings a saved ``lm_head.weight`` is ignored.
    """
    sd = _fuse_experts(sd)
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    own = model.state_dict()
    if model.config.tie_word_embeddings:
        own.pop("lm_head.weight", None)
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    mismatched = [f"{k}: checkpoint {tuple(sd[k].shape)}, model {tuple(own[k].shape)}"
                  for k in sorted(set(sd) & set(own)) if sd[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or mismatched:
        lines = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", mismatched)):  # fmt: skip
            if items:
                shown = items[:20] + ([f"… and {len(items) - 20} more"] if len(items) > 20 else [])
                lines.append(f"{title} ({len(items)}):" + "".join(f"\n    {i}" for i in shown))
        raise ValueError("checkpoint does not fit the model:\n  " + "\n  ".join(lines))
    with torch.no_grad():
        for key, value in sd.items():
            own[key].copy_(value)


def _read_safetensors(file: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not file.is_file():
        raise ValueError(f"checkpoint file {file} does not exist")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"cannot read {file}: truncated or not a safetensors file ({err})"
        ) from err


def from_pretrained(path: str | Path, dtype: torch.dtype | None = None) -> JambaForCausalLM:
    """A model from a local folder: ``config.json`` plus ``model.safetensors`` or a sharded
    ``model.safetensors.index.json``. ``dtype`` casts the weights (default: as stored)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"from_pretrained: {folder} is not a folder")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ValueError(f"from_pretrained: {folder} has no config.json")
    config = JambaConfig.from_dict(json.loads(config_file.read_text()))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        sd = {}
        for shard in shards:
            sd.update(_read_safetensors(folder / shard))
    elif (folder / "model.safetensors").is_file():
        sd = _read_safetensors(folder / "model.safetensors")
    else:
        raise ValueError(
            f"from_pretrained: {folder} has neither model.safetensors nor "
            "model.safetensors.index.json (pickled .bin checkpoints are not loaded)"
        )
    model = JambaForCausalLM(config)
    if dtype is None:
        dtype = next(iter(sd.values())).dtype
    model.to(dtype)
    load_hf_state_dict(model, sd)
    return model.eval()


def save_pretrained(model: JambaForCausalLM, path: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` in the published (per-expert) layout."""
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    sd = _split_experts(model.state_dict())
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip

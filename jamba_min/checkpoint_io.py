"""Reading and writing checkpoint folders without trusting them (chapter 8).

A folder holds ``config.json`` and either ``model.safetensors`` or an index,
``model.safetensors.index.json``, whose ``weight_map`` names the shard file of every tensor.
Every file read must resolve inside the folder, after symlinks; tensors are first known by their
headers only (names, shapes, dtypes), so nothing large is read before the names and shapes have
been checked. A checkpoint is written to temporary files and renamed into place.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

__all__ = [
    "CONFIG", "INDEX", "SHOWN", "STORED_DTYPES", "WEIGHTS", "Entry", "file_in", "read_headers",
    "read_json", "shards", "write_checkpoint",
]  # fmt: skip

CONFIG, WEIGHTS, INDEX = "config.json", "model.safetensors", "model.safetensors.index.json"
#: safetensors' names of the dtypes a Jamba weight may be stored in
STORED_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
                 "BF16": torch.bfloat16}  # fmt: skip
SHOWN = 20  # names listed in an error


def file_in(folder: Path, name: Any, what: str) -> Path:
    """``folder / name``, if it is a file that resolves (after symlinks) inside ``folder``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what}: a file name must be a non-empty string, got {name!r}")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ValueError(
            f"{what}: {name!r} resolves outside {folder}; a checkpoint may only read files inside "
            "its folder (a Hugging Face cache snapshot links into its blobs folder: download with "
            "snapshot_download(..., local_dir=...) to get a folder of plain files)"
        )
    if not path.is_file():
        raise ValueError(f"{what}: {name!r} is not a file in {folder}")
    return path


def read_json(folder: Path, name: str) -> Any:
    path = file_in(folder, name, name)
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        where = f" (line {err.lineno}, column {err.colno})" if hasattr(err, "lineno") else ""
        raise ValueError(f"{name} in {folder} is not valid JSON{where}") from None


def shards(folder: Path) -> tuple[dict[str, str] | None, list[str]]:
    """The index's weight map (None for a single file) and the names of the weight files."""
    if (folder / INDEX).exists() or (folder / INDEX).is_symlink():
        index = read_json(folder, INDEX)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict):
            got = type(weight_map).__name__ if isinstance(index, dict) else type(index).__name__
            raise ValueError(
                f"{INDEX} in {folder} must hold a 'weight_map' that maps tensor names to shard "
                f"files, got {got}"
            )
        if not weight_map:
            raise ValueError(f"{INDEX} in {folder} has an empty weight_map")
        for key, shard in weight_map.items():
            if not isinstance(shard, str):
                raise ValueError(f"{INDEX}: weight_map[{key!r}] must be a file name, got {shard!r}")
        return weight_map, sorted(set(weight_map.values()))
    if (folder / WEIGHTS).exists() or (folder / WEIGHTS).is_symlink():
        return None, [WEIGHTS]
    raise ValueError(
        f"from_pretrained: {folder} has neither {WEIGHTS} nor {INDEX} "
        "(pickled .bin checkpoints are not loaded)"
    )


class Entry(NamedTuple):
    """Where a tensor is stored and what its header says."""

    path: Path
    shard: str  # the file name, as the index gives it
    shape: tuple[int, ...]
    dtype: str  # safetensors' name: F32, BF16, …


def read_headers(folder: Path, weight_map: dict | None, names: list[str]) -> dict[str, Entry]:
    """Every tensor's entry, from the files' headers alone (no tensor is read)."""
    from safetensors import SafetensorError, safe_open

    found: dict[str, Entry] = {}
    for name in names:
        path = file_in(folder, name, "shard" if weight_map is not None else WEIGHTS)
        try:
            with safe_open(str(path), "pt") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                    if key in found:
                        raise ValueError(
                            f"tensor {key!r} is stored twice: in {found[key].shard} and {name}"
                        )
                    piece = f.get_slice(key)
                    found[key] = Entry(path, name, tuple(piece.get_shape()), piece.get_dtype())
        except (SafetensorError, OSError) as err:
            raise ValueError(
                f"cannot read {name} in {folder}: truncated or not a safetensors file ({err})"
            ) from None
    if weight_map is not None:
        wrong = sorted(k for k in found.keys() | weight_map.keys()
                       if k not in found or weight_map.get(k) != found[k].shard)  # fmt: skip
        if wrong:
            shown = ", ".join(map(repr, wrong[:SHOWN])) + (" …" if len(wrong) > SHOWN else "")
            raise ValueError(
                f"{INDEX} in {folder} disagrees with its shards about {len(wrong)} tensor(s) "
                f"(listed in another shard, not listed, or not stored): {shown}"
            )
    for key, entry in found.items():
        if entry.dtype not in STORED_DTYPES:
            raise ValueError(
                f"tensor {key!r} is stored as {entry.dtype}; Jamba's weights are floating point "
                f"({', '.join(STORED_DTYPES)})"
            )
    return found


def _old_shards(folder: Path) -> list[Path]:
    """The shard files a sharded checkpoint already in ``folder`` lists (inside the folder and
    named ``*.safetensors`` only; an unreadable index lists none)."""
    try:
        weight_map, names = shards(folder)
    except ValueError:
        return []
    if weight_map is None:
        return []
    old = []
    for name in names:
        try:
            path = file_in(folder, name, "shard")
        except ValueError:
            continue
        if path.suffix == ".safetensors" and path.name != WEIGHTS:
            old.append(path)
    return old


def write_checkpoint(folder: Path, write_weights: Callable[[str], None], config: str) -> None:
    """Write ``model.safetensors`` (through ``write_weights(filename)``) and ``config.json``
    (the text ``config``) into ``folder``.

    Both go to temporary files in the folder first and are renamed into place only when both
    are complete, so an error while writing leaves the previous checkpoint untouched. The index
    and shards of a previous sharded checkpoint are removed; other files stay.
    """
    old = _old_shards(folder)
    tmp = {name: folder / f".{name}.{uuid.uuid4().hex}.tmp" for name in (WEIGHTS, CONFIG)}
    try:
        write_weights(str(tmp[WEIGHTS]))
        tmp[CONFIG].write_text(config)
        for file in tmp.values():
            with open(file, "rb+") as f:
                os.fsync(f.fileno())
        (folder / INDEX).unlink(missing_ok=True)  # else it, not the new file, would be loaded
        os.replace(tmp[WEIGHTS], folder / WEIGHTS)
        os.replace(tmp[CONFIG], folder / CONFIG)
    finally:
        for file in tmp.values():
            file.unlink(missing_ok=True)
    for shard in old:
        shard.unlink(missing_ok=True)

"""Results of the experiments and benchmarks too long for a notebook, shipped with the package.

Each ``<name>.json`` here was written by ``experiments/<name>.py`` or ``benchmarks/<name>.py``
(the command, the machine, the versions and the time taken are in its ``"meta"`` entry). They
live inside the package so that a chapter opened in Colab, where only the package is installed,
plots the same numbers as the book.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def available() -> list[str]:
    """Names of the shipped results, sorted."""
    return sorted(
        f.name.removesuffix(".json")
        for f in resources.files(__name__).iterdir()
        if f.name.endswith(".json")
    )


def load(name: str) -> dict[str, Any]:
    """The results of ``experiments/<name>.py``, as the JSON object it wrote."""
    if name not in available():
        raise ValueError(f"name must be one of {available()}, got {name!r}")
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text())

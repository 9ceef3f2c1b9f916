"""Graders for any chapter: a prediction written down before running, an explanation's key facts.

``check_prediction(my_prediction, actual)`` is called in the notebook itself; an explain
exercise gets its own ``check_*`` in its chapter's module, built on :func:`key_facts`, so that
the facts it looks for are not printed in the reader's cell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from ._common import PASSED, grader

__all__ = ["check_prediction"]


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


@grader
def check_prediction(mine: Any, actual: Any, *, rel_tol: float = 0.1) -> None:
    """Grade a prediction the reader wrote down before running: ``mine`` against ``actual``.

    Numbers agree when within ``rel_tol`` (10 % by default) of the computed value; shapes
    (tuples, ``torch.Size``), strings (ignoring case and surrounding space) and anything else
    must be equal.
    """
    name = "check_prediction"
    mine, actual = _plain(mine), _plain(actual)
    numbers = (int, float)
    if isinstance(actual, numbers) and not isinstance(actual, bool):
        if not isinstance(mine, numbers):
            raise AssertionError(f"{name}: the computed value is a number, you wrote {mine!r}")
        off = abs(mine - actual) / max(abs(actual), 1e-300)
        if not off <= rel_tol:
            raise AssertionError(
                f"{name}: you predicted {mine:g}, the notebook computed {actual:g} "
                f"({off:.0%} off; {rel_tol:.0%} would do); find the step you missed"
            )
        print(f"{PASSED} {name}: you predicted {mine:g}, the notebook computed {actual:g}")
        return
    if isinstance(actual, str) and isinstance(mine, str):
        ok = mine.strip().lower() == actual.strip().lower()
    else:
        ok = _plain(tuple(mine) if isinstance(mine, list) else mine) == actual
    if not ok:
        raise AssertionError(f"{name}: you predicted {mine!r}, the notebook computed {actual!r}")
    print(f"{PASSED} {name}: you predicted {actual!r}, and so it is")


def key_facts(name: str, answer: str, facts: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Check that a written answer states every key fact; used by the explain exercises' graders.

    ``facts``: (what the fact is, in words that finish "your answer does not yet say …"; regular
    expressions, any of which shows the fact is stated). Matching ignores case and line breaks.
    A keyword check is a coarse filter, not a judge: the printed line says to compare with the
    solution (or to hand the answer to an instructor).
    """
    if not isinstance(answer, str):
        raise AssertionError(f"{name}: write your answer as a string, got {type(answer).__name__}")
    text = " ".join(answer.lower().split())
    for what, patterns in facts:
        if not any(re.search(p, text) for p in patterns):
            raise AssertionError(f"{name}: your answer does not yet say {what}")
    print(f"{PASSED} {name}: states the {len(facts)} key facts; compare with the solution")

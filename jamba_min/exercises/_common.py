"""What every grader shares: the ``@grader`` decorator, the input guard, the comparisons.

A grader is ``check_<thing>(answer, ...)``. Decorated with :func:`grader`, it

- prints one line and returns when the answer is not written yet: a function that raises
  ``NotImplementedError`` (the stub) or a value that is ``None``, ``...`` or a blank string; a
  student notebook then runs from top to bottom with every exercise still open;
- raises ``AssertionError`` with one sentence naming the first case that is wrong and what is
  wrong with it (a shape, a dtype, values, a gradient, an input changed in place);
- prints one line starting with ``✓`` when every case passes.

The helpers below do the work, so a chapter's grader only builds its cases:
``got = call(name, label, fn, *args)`` runs the reader's function and checks that it left its
inputs alone; :func:`compare_tensors` and :func:`compare_values` compare and print;
:func:`compare_gradients` compares gradients with a reference.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch

PASSED = "✓"  # first character of a grader's line when the answer is right
NOT_YET = "…"  # first character of its line when the answer is not written yet


class _Unfinished(Exception):
    """The reader's function raised ``NotImplementedError``: grading stops, politely."""


def is_unanswered(value: Any) -> bool:
    """``None``, ``...`` or a blank string: what a predict or explain stub holds."""
    return value is None or value is Ellipsis or (isinstance(value, str) and not value.strip())


def grader(check: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``check(answer, *args)`` so that an unwritten ``answer`` prints one line.

    Only a ``NotImplementedError`` raised by the reader's own function counts as "not yet
    implemented"; one raised by the package while grading propagates as the error it is.
    """
    name = check.__name__

    @functools.wraps(check)
    def graded(answer: Any, *args: Any, **kwargs: Any) -> Any:
        if is_unanswered(answer):
            print(f"{NOT_YET} {name}: not yet answered (write it above, run again)")
            return None
        reader = answer
        if callable(answer) and not isinstance(answer, type):

            @functools.wraps(reader)
            def guarded(*a: Any, **k: Any) -> Any:
                try:
                    return reader(*a, **k)
                except NotImplementedError as e:
                    raise _Unfinished from e

            answer = guarded
        try:
            return check(answer, *args, **kwargs)
        except _Unfinished:
            what = getattr(reader, "__name__", "")
            what = what if what.isidentifier() else "your function"  # "<lambda>"
            print(f"{NOT_YET} {name}: not yet implemented (fill in {what})")
            return None

    graded.is_grader = True  # type: ignore[attr-defined]
    return graded


# --------------------------------------------------------------------------- inputs left alone
def _snapshot(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value) if type(value) in (list, tuple) else value
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    try:
        return copy.deepcopy(value)
    except Exception:  # something that cannot be copied is not checked
        return value


def _same(now: Any, before: Any) -> bool:
    if isinstance(before, torch.Tensor):
        if not isinstance(now, torch.Tensor) or now.shape != before.shape:
            return False
        if now.dtype != before.dtype:
            return False
        now = now.detach()
        if now.dtype.is_floating_point or now.dtype.is_complex:
            return bool(((now == before) | (now.isnan() & before.isnan())).all())
        return torch.equal(now, before)
    if isinstance(before, (list, tuple)):
        return len(now) == len(before) and all(map(_same, now, before))
    if isinstance(before, dict):
        return now.keys() == before.keys() and all(_same(now[k], before[k]) for k in before)
    try:
        return bool(now == before)
    except Exception:
        return True


def _parameter_names(fn: Callable[..., Any], n: int) -> list[str]:
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    return [f"{names[i]!r}" if i < len(names) else f"argument {i + 1}" for i in range(n)]


def call(name: str, label: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, then check that ``fn`` changed none of its arguments in place."""
    before = [_snapshot(a) for a in args]
    got = fn(*args)
    changed = [i for i, (a, b) in enumerate(zip(args, before, strict=True)) if not _same(a, b)]
    if changed:
        which = _parameter_names(fn, len(args))[changed[0]]
        raise AssertionError(
            f"{name}: for {label}, your function changed its input {which} in place; "
            "work on a copy (x = x.clone()) or use out-of-place operations"
        )
    return got


# --------------------------------------------------------------------------- comparisons
def gen(seed: int) -> torch.Generator:
    """A CPU random generator with a fixed seed: the same cases on every machine."""
    return torch.Generator().manual_seed(seed)


def compare_values(name: str, cases: Iterable[tuple[str, Any, Any]]) -> None:
    """Exact comparison of plain values (numbers, tuples): ``cases`` yields (label, got, want)."""
    n = 0
    for label, got, want in cases:
        if got != want:
            raise AssertionError(f"{name}: for {label}, expected {want!r}, got {got!r}")
        n += 1
    print(f"{PASSED} {name}: {n} cases agree")


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "boolean"
    return "floating-point" if dtype.is_floating_point else "integer"


def compare_tensors(name: str, cases: Iterable[tuple[str, Any, Any]], tol: float = 1e-9) -> None:
    """Compare tensors (or tuples of tensors): ``cases`` yields (label, got, want).

    Checks, in this order, the number of outputs, each one's shape, its kind of dtype (integer,
    floating-point or boolean) and its values, to ``tol`` relative to the largest expected value
    (at least 1).
    """
    n = 0
    for label, got, want in cases:
        got_t = got if isinstance(got, (tuple, list)) else (got,)
        want_t = want if isinstance(want, (tuple, list)) else (want,)
        if len(got_t) != len(want_t):
            raise AssertionError(
                f"{name}: for {label}, expected {len(want_t)} outputs, got {len(got_t)}"
            )
        for i, (g, w) in enumerate(zip(got_t, want_t, strict=True)):
            if not isinstance(g, torch.Tensor) or g.shape != w.shape:
                shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                raise AssertionError(
                    f"{name}: for {label}, output {i} should have shape {tuple(w.shape)}, "
                    f"got {shape}"
                )
            if _kind(g.dtype) != _kind(w.dtype):
                raise AssertionError(
                    f"{name}: for {label}, output {i} should have a {_kind(w.dtype)} dtype "
                    f"(like {w.dtype}), got {g.dtype}"
                )
            err = (g.detach().double() - w.double()).abs().max().item() if w.numel() else 0.0
            scale = max(1.0, w.abs().max().item()) if w.numel() else 1.0
            if not err <= tol * scale:
                raise AssertionError(f"{name}: for {label}, output {i} is off by {err:.3g}")
        n += 1
    print(f"{PASSED} {name}: {n} cases agree")


def compare_gradients(
    name: str,
    label: str,
    fn: Callable[..., Any],
    reference: Callable[..., Any],
    args: tuple[Any, ...],
    tol: float = 1e-9,
) -> None:
    """Compare the gradients of ``fn`` and ``reference`` with respect to every float tensor.

    Both are called on fresh leaf copies of ``args``; each output is weighted by fixed random
    numbers and summed, and the backward passes must agree to ``tol`` (relative, as
    :func:`compare_tensors`). Raises ``AssertionError`` naming the first input that differs.
    """

    def leaves() -> list[Any]:
        return [
            a.detach().clone().requires_grad_(True)
            if isinstance(a, torch.Tensor) and a.dtype.is_floating_point
            else a
            for a in args
        ]

    def backward(f: Callable[..., Any], inputs: list[Any]) -> list[torch.Tensor | None]:
        out = f(*inputs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        g = gen(1234)
        total = sum(
            (o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum()
            for o in outs
            if isinstance(o, torch.Tensor) and o.requires_grad
        )
        if not isinstance(total, torch.Tensor):
            raise AssertionError(
                f"{name}: for {label}, no output depends on the inputs through autograd "
                "(detached, or computed under torch.no_grad?)"
            )
        total.backward()
        return [a.grad if isinstance(a, torch.Tensor) else None for a in inputs]

    mine, want = backward(fn, leaves()), backward(reference, leaves())
    names = _parameter_names(fn, len(args))
    for i, (g, w) in enumerate(zip(mine, want, strict=True)):
        if w is None:
            continue
        if g is None:
            raise AssertionError(f"{name}: for {label}, no gradient reaches input {names[i]}")
        err = (g.double() - w.double()).abs().max().item()
        if not err <= tol * max(1.0, w.abs().max().item()):
            raise AssertionError(
                f"{name}: for {label}, the gradient with respect to {names[i]} is off by {err:.3g}"
            )

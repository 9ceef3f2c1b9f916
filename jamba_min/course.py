"""Teaching with the book: the exercise-cell convention, its checker, and the student export.

    python -m jamba_min.course student OUTDIR   # student notebooks: solutions removed
    python -m jamba_min.course check [NB ...]   # does every exercise follow the convention?
    python -m jamba_min.course list             # the exercises of every chapter, by kind

The exercise-cell convention
----------------------------
Every chapter notebook ends with a ``## Exercises`` section of 2-4 exercises. An exercise is
three things, in this order:

1. **A heading** in a markdown cell, on its own line::

       ### Exercise 9.1 (implement): the whole schedule at once

   ``9`` is the chapter (the number the notebook's file name starts with), ``.1`` counts the
   exercises from 1, and the kind in parentheses is one of

   - ``implement``: write a function the chapter built or used;
   - ``predict``: write down a number or a shape, then run the cell that computes it;
   - ``explain``: answer in a few sentences;
   - ``extend``: add to the package something the chapter did not show.

   The prose below the heading says what to do. The exercise runs until the next heading of
   level 3 or less.
2. **One stub cell**, a code cell tagged ``exercise-stub``: what the reader fills in, and the
   grader call, *not* commented out:

   - implement, extend: ``def f(...):`` with the body ``raise NotImplementedError  # your code
     here``, then ``check_f(f)``;
   - predict: ``my_prediction = None  # write your number here``, the code that computes the
     value, then ``check_prediction(my_prediction, value)``;
   - explain: ``answer = \"\"\" \"\"\"``, then the chapter's ``check_<topic>_answer(answer)``,
     which looks for the key facts (or says the answer is for the instructor).

   Every grader (``jamba_min.exercises``) prints ``… check_f: not yet implemented`` (or ``not
   yet answered``) for the stub and returns, so a student notebook runs from top to bottom. The
   book stores that line as the stub cell's output.
3. **One solution cell**, a code cell tagged ``solution`` and ``hide-cell`` (collapsed in the
   rendered book), with the cell metadata ``"jupyter": {"source_hidden": true}`` (collapsed in
   JupyterLab and Notebook 7) and ``"cellView": "form"`` (Colab shows the form's title and hides
   the code behind "Show code"), whose first line is::

       # @title Solution (try the exercise first)

   It defines the solution and calls the same grader(s) as the stub; the book stores its ``✓``
   line. Names it defines must not be used by any later cell except other solution cells (the
   student version has no solution cells).

``python -m jamba_min.course check`` and ``tests/test_book.py`` check all of this, including the
stored ``…``/``✓`` lines, which nbval then re-executes.

The student version
-------------------
``student`` writes every notebook of the book to OUTDIR with the solution cells removed and
every other cell kept, byte for byte, with one exception: from the first stub or solution cell
of a notebook on, code cells are stored unexecuted (no outputs, no execution count), since what
they print may depend on a solution, through a name or through the random state. Exercises come
at the end of a chapter, so in practice only the exercise cells lose their outputs. Data files
that notebooks read from the repository by a path like ``"../benchmarks/scan_cpu.json"`` are
copied to ``OUTDIR/benchmarks/``, where the same notebooks also look.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

KINDS = ("implement", "predict", "explain", "extend")
STUB_TAG = "exercise-stub"
SOLUTION_TAG = "solution"
SOLUTION_TAGS = frozenset({SOLUTION_TAG, "hide-cell"})
SOLUTION_TITLE = "# @title Solution (try the exercise first)"
HEADING = re.compile(r"^#{1,6} +Exercise\b.*$", re.M)
EXERCISE = re.compile(
    r"^### Exercise (?P<chapter>\d+)\.(?P<k>\d+) \((?P<kind>[a-z]+)\): (?P<title>\S.*)$"
)
SECTION_END = re.compile(r"^#{1,3} ", re.M)
DATA_PATH = re.compile(r"""["']\.\./((?:[\w.-]+/)*[\w.-]+\.(?:json|csv))["']""")


# --------------------------------------------------------------------------- reading notebooks
def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def is_stub(cell: dict) -> bool:
    return cell["cell_type"] == "code" and STUB_TAG in tags(cell)


def is_solution(cell: dict) -> bool:
    return cell["cell_type"] == "code" and SOLUTION_TAG in tags(cell)


def chapter_number(path: Path) -> int | None:
    """The chapter a notebook holds, from its file name (``09_training.ipynb`` → 9)."""
    m = re.match(r"(\d+)_", path.name)
    return int(m.group(1)) if m else None


def stdout(cell: dict) -> str:
    return "".join(
        "".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("name") == "stdout"
    )


def _parse(code: str) -> ast.Module | None:
    # IPython magics and shell escapes are not Python
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def graders_called(code: str) -> set[str]:
    """Names of the ``check_*`` functions a cell calls."""
    tree = _parse(code)
    if tree is None:
        return set(re.findall(r"\b(check_\w+)\(", code))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name.startswith("check_"):
                found.add(name)
    return found


def names_bound(code: str) -> set[str]:
    """Names a cell binds at its top level (assignments, defs, classes, imports)."""
    tree = _parse(code)
    if tree is None:
        return set()
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    bound.add(sub.id)
    return bound


def names_used(code: str) -> set[str]:
    tree = _parse(code)
    if tree is None:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _leaves_unanswered(code: str) -> bool:
    """A predict or explain stub: some name is assigned None, ``...`` or a blank string."""
    tree = _parse(code)
    if tree is None:
        return False
    for node in ast.walk(tree):
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.Constant) and (
            value.value is None
            or value.value is Ellipsis
            or (isinstance(value.value, str) and not value.value.strip())
        ):
            return True
    return False


# --------------------------------------------------------------------------- the convention
def exercises(nb: dict) -> list[dict]:
    """The exercises of a notebook: heading fields and the indices of their cells.

    Each item: ``chapter``, ``k``, ``kind``, ``title``, ``heading`` (the line), ``cell`` (index
    of the markdown cell holding the heading), ``cells`` (indices of the cells after the heading
    up to the end of the exercise).
    """
    cells = nb["cells"]
    found: list[dict] = []
    current: dict | None = None
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            for line in source(cell).splitlines():
                if HEADING.match(line):
                    m = EXERCISE.match(line)
                    current = {
                        "heading": line,
                        "cell": i,
                        "cells": [],
                        **(m.groupdict() if m else {}),
                    }
                    found.append(current)
                elif SECTION_END.match(line):
                    current = None
            continue
        if current is not None:
            current["cells"].append(i)
    return found


def problems(nb: dict, chapter: int | None) -> list[str]:
    """Everything in a notebook that breaks the exercise-cell convention (empty: it follows it)."""
    cells = nb["cells"]
    out: list[str] = []
    found = exercises(nb)
    if not 2 <= len(found) <= 4:
        out.append(f"{len(found)} exercises; a chapter has 2-4")
    in_exercise: set[int] = set()
    for n, ex in enumerate(found, start=1):
        where = f"exercise heading {ex['heading']!r}"
        if "kind" not in ex:
            out.append(
                f"{where}: write it as '### Exercise {chapter}.{n} (kind): title', "
                f"kind one of {', '.join(KINDS)}"
            )
            continue
        if ex["kind"] not in KINDS:
            out.append(f"{where}: kind {ex['kind']!r} is not one of {', '.join(KINDS)}")
        if chapter is not None and int(ex["chapter"]) != chapter:
            out.append(f"{where}: this is chapter {chapter}")
        if int(ex["k"]) != n:
            out.append(f"{where}: expected number {chapter}.{n}")
        in_exercise.update(ex["cells"])
        stubs = [i for i in ex["cells"] if is_stub(cells[i])]
        solutions = [i for i in ex["cells"] if is_solution(cells[i])]
        if len(stubs) != 1 or len(solutions) != 1:
            out.append(
                f"{where}: needs exactly one '{STUB_TAG}' cell and one '{SOLUTION_TAG}' cell, "
                f"found {len(stubs)} and {len(solutions)}"
            )
            continue
        stub, solution = cells[stubs[0]], cells[solutions[0]]
        if stubs[0] > solutions[0]:
            out.append(f"{where}: the stub cell comes before the solution cell")
        out += [f"{where}: {p}" for p in _stub_problems(stub, ex["kind"])]
        out += [f"{where}: {p}" for p in _solution_problems(solution)]
        called = graders_called(source(stub))
        if called and graders_called(source(solution)) != called:
            out.append(
                f"{where}: the solution must call the stub's grader(s) {sorted(called)}, "
                f"it calls {sorted(graders_called(source(solution)))}"
            )
    strays = [
        i for i, c in enumerate(cells) if (is_stub(c) or is_solution(c)) and i not in in_exercise
    ]
    if strays:
        out.append(f"cells {strays} are tagged as exercise cells outside any exercise")
    out += _solution_names_used_later(cells)
    return out


def _stub_problems(cell: dict, kind: str) -> list[str]:
    out = []
    code = source(cell)
    if SOLUTION_TAGS & tags(cell):
        out.append("the stub cell must not be tagged solution or hide-cell")
    if not graders_called(code):
        out.append("the stub cell calls no check_* grader (and it must not be commented out)")
    if kind in ("implement", "extend") and "raise NotImplementedError" not in code:
        out.append("an implement/extend stub has 'raise NotImplementedError  # your code here'")
    if kind in ("predict", "explain") and not (
        "raise NotImplementedError" in code or _leaves_unanswered(code)
    ):
        out.append("a predict/explain stub leaves its answer None or a blank string")
    if "not yet" not in stdout(cell):
        out.append("the stub cell's stored output is not the grader's 'not yet' line")
    return out


def _solution_problems(cell: dict) -> list[str]:
    out = []
    missing = SOLUTION_TAGS - tags(cell)
    if missing:
        out.append(f"the solution cell lacks the tag(s) {sorted(missing)}")
    meta = cell.get("metadata", {})
    if meta.get("jupyter", {}).get("source_hidden") is not True:
        out.append('the solution cell lacks the metadata "jupyter": {"source_hidden": true}')
    if meta.get("cellView") != "form":
        out.append('the solution cell lacks the metadata "cellView": "form"')
    if source(cell).splitlines()[:1] != [SOLUTION_TITLE]:
        out.append(f"the solution cell's first line is not {SOLUTION_TITLE!r}")
    if "✓ " not in stdout(cell):
        out.append("the solution cell's stored output has no grader's '✓' line")
    return out


def _solution_names_used_later(cells: list[dict]) -> list[str]:
    others: set[str] = set()
    for c in cells:
        if c["cell_type"] == "code" and not is_solution(c):
            others |= names_bound(source(c))
    out = []
    only: set[str] = set()
    for i, c in enumerate(cells):
        if c["cell_type"] != "code":
            continue
        if is_solution(c):
            only |= names_bound(source(c)) - others
            continue
        used = sorted(names_used(source(c)) & only)
        if used:
            out.append(f"cell {i} uses {used}, defined only in a solution cell")
    return out


# --------------------------------------------------------------------------- the student version
def student_notebook(nb: dict) -> dict:
    """The student version of one notebook (a new dict; ``nb`` is left alone)."""
    student = copy.deepcopy(nb)
    cells = student["cells"]
    first = next((i for i, c in enumerate(cells) if is_stub(c) or is_solution(c)), len(cells))
    kept = []
    for i, cell in enumerate(cells):
        if is_solution(cell):
            continue
        if i >= first and cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            cell.get("metadata", {}).pop("execution", None)  # timings of the book's run
        kept.append(cell)
    student["cells"] = kept
    return student


def find_book(book: str | Path | None = None) -> Path:
    """The folder of the chapter notebooks: ``book``, or ``book/`` beside the package."""
    if book is not None:
        path = Path(book).resolve()
        if not any(path.glob("*.ipynb")):
            raise SystemExit(f"error: {path} holds no notebooks (*.ipynb)")
        return path
    path = Path(__file__).resolve().parents[1] / "book"
    if not any(path.glob("*.ipynb")):
        raise SystemExit(
            "error: no book/ folder beside the jamba_min package (installed from a wheel?); "
            "clone the repository and pass --book PATH/TO/book"
        )
    return path


def notebooks(book: Path) -> list[Path]:
    return sorted(p for p in book.glob("*.ipynb") if not p.name.startswith("."))


def data_files(nb: dict, book: Path) -> list[str]:
    """Repository files a notebook reads by a path like ``"../benchmarks/x.json"``."""
    found = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for rel in DATA_PATH.findall(source(cell)):
                if (book.parent / rel).is_file():
                    found.add(rel)
    return sorted(found)


def write_student_version(outdir: str | Path, book: str | Path | None = None) -> list[Path]:
    """Write the student version of every notebook in the book to ``outdir``; return the paths."""
    book = find_book(book)
    out = Path(outdir).resolve()
    if out == book or book in out.parents:
        raise SystemExit(
            f"error: {out} is the book's own folder (or inside it); choose another OUTDIR, "
            "the sources would be overwritten"
        )
    if out.exists() and not out.is_dir():
        raise SystemExit(f"error: {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks(book):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for rel in data_files(nb, book):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(book.parent / rel, out / rel)
        target = out / path.name
        target.write_text(
            json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        written.append(target)
    return written


# --------------------------------------------------------------------------- command line
def _check(paths: Iterable[Path]) -> int:
    bad = 0
    for path in paths:
        found = problems(json.loads(path.read_text(encoding="utf-8")), chapter_number(path))
        for p in found:
            print(f"{path.name}: {p}")
        bad += bool(found)
    return 1 if bad else 0


def _list(paths: Iterable[Path]) -> None:
    for path in paths:
        found = exercises(json.loads(path.read_text(encoding="utf-8")))
        print(f"{path.name}: {len(found)} exercises")
        for ex in found:
            if "kind" in ex:
                print(f"  {ex['chapter']}.{ex['k']} ({ex['kind']}): {ex['title']}")
            else:
                print(f"  (not in the convention) {ex['heading']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jamba_min.course",
        description="Teach with the book: write the student notebooks, check the exercises.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--book",
        help="the folder of the chapter notebooks (default: book/ beside the jamba_min "
        "package, which a clone of the repository has)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser(
        "student", parents=[common], help="write student notebooks (solutions removed)"
    )
    student.add_argument("outdir", help="where to write them (not the book's own folder)")
    check = sub.add_parser("check", parents=[common], help="check the exercise-cell convention")
    check.add_argument("notebooks", nargs="*", help="notebooks to check (default: all)")
    sub.add_parser("list", parents=[common], help="list every chapter's exercises by kind")
    args = parser.parse_args(argv)
    if args.command == "check" and args.notebooks:
        return _check(Path(p) for p in args.notebooks)
    book = find_book(args.book)
    if args.command == "student":
        written = write_student_version(args.outdir, book)
        print(f"wrote {len(written)} student notebooks to {Path(args.outdir).resolve()}")
        return 0
    if args.command == "check":
        return _check(notebooks(book))
    _list(notebooks(book))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The student export (python -m jamba_min.course) and the exercise-cell convention's checker.

The real book is exported and compared cell by cell with its sources. Executing a chapter's
student notebook takes minutes, so the execution checks run on a small notebook built here that
follows the convention; the real chapters' stubs and solutions are executed by nbval, which
compares their stored "not yet" and "✓" lines (tests/test_book.py checks that they are there).
"""

import copy
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from jamba_min import course

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SOLUTION_META = {"cellView": "form", "jupyter": {"source_hidden": True}}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_student_export_of_the_book(tmp_path):
    written = course.write_student_version(tmp_path / "student", BOOK)
    assert [p.name for p in written] == [p.name for p in course.notebooks(BOOK)]
    for path in written:
        book, student = load(BOOK / path.name), load(path)
        kept = [c for c in book["cells"] if not course.is_solution(c)]
        assert not [c for c in student["cells"] if course.is_solution(c)], path.name
        assert len(student["cells"]) == len(kept)
        first = next((i for i, c in enumerate(kept) if course.is_stub(c)), len(kept))
        for i, (want, got) in enumerate(zip(kept, student["cells"], strict=True)):
            if i < first or want["cell_type"] != "code":
                assert got == want, f"{path.name}: cell {i} changed"
            else:  # from the first stub on: the same cell, stored unexecuted
                assert got["source"] == want["source"] and got["id"] == want["id"]
                assert got["outputs"] == [] and got["execution_count"] is None
                assert got["metadata"].get("tags") == want["metadata"].get("tags")
        assert student["metadata"] == book["metadata"]
        stubs = [c for c in student["cells"] if course.is_stub(c)]
        assert len(stubs) == len([c for c in book["cells"] if course.is_stub(c)])
        if stubs:  # a converted chapter: every exercise keeps its stub and loses its solution
            assert len(stubs) == len(course.exercises(book))
    # data files read as "../benchmarks/*.json" sit where the notebooks also look
    assert (tmp_path / "student" / "benchmarks" / "scan_cpu.json").is_file()


def test_the_pilot_chapter_is_exported_with_its_stubs(tmp_path):
    course.main(["student", str(tmp_path), "--book", str(BOOK)])
    student = load(tmp_path / "09_training.ipynb")
    stubs = [course.source(c) for c in student["cells"] if course.is_stub(c)]
    assert len(stubs) == len(course.exercises(load(BOOK / "09_training.ipynb"))) >= 2
    assert all("check_" in s for s in stubs)
    assert "_solution" not in json.dumps(student)  # the solutions' names went with them


def test_export_refuses_to_write_into_the_book(tmp_path):
    for target in (BOOK, BOOK / "student"):
        with pytest.raises(SystemExit, match="the book's own folder"):
            course.write_student_version(target, BOOK)
    assert not (BOOK / "student").exists()


def test_export_without_a_book_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="holds no notebooks"):
        course.main(["student", str(tmp_path / "out"), "--book", str(tmp_path)])


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        course.main(["--help"])
    assert exit_.value.code == 0
    assert "student" in capsys.readouterr().out


# --------------------------------------------------------------------------- a small notebook
def md(text: str) -> dict:
    return nbformat.v4.new_markdown_cell(text)


def code(text: str, *tags: str, **meta) -> dict:
    cell = nbformat.v4.new_code_cell(text)
    cell.metadata.update(meta)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def solution(text: str) -> dict:
    return code(f"{course.SOLUTION_TITLE}\n{text}", "solution", "hide-cell", **SOLUTION_META)


def small_notebook() -> nbformat.NotebookNode:
    """Chapter 2 in miniature: one exercise of each of three kinds, then a closing cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        md("# 2. A small chapter"),
        code("import torch\n\nx = torch.zeros(2, 3)"),
        md("## Exercises\n\n### Exercise 2.1 (implement): a moving average\n\nWrite `ema`."),
        code(
            "from jamba_min.exercises import check_ema\n\n\n"
            "def ema(x, alpha):\n    raise NotImplementedError  # your code here\n\n\n"
            "check_ema(ema)",
            "exercise-stub",
        ),
        solution(
            "def ema_solution(x, alpha):\n    y, out = 0.0, []\n    for v in x:\n"
            "        y = alpha * y + (1 - alpha) * v\n        out.append(y)\n"
            "    return torch.stack(out)\n\n\ncheck_ema(ema_solution)"
        ),
        md("### Exercise 2.2 (predict): a shape\n\nWhat is the shape of `x.T`?"),
        code(
            "from jamba_min.exercises import check_prediction\n\n"
            "my_prediction = None  # write the shape here\n"
            "check_prediction(my_prediction, x.T.shape)",
            "exercise-stub",
        ),
        solution("my_prediction = (3, 2)\ncheck_prediction(my_prediction, x.T.shape)"),
        md("### Exercise 2.3 (explain): the first token\n\nWhy is it never a target?"),
        code(
            "from jamba_min.exercises import check_first_token_answer\n\n"
            'answer = """\n"""  # your answer here\n\ncheck_first_token_answer(answer)',
            "exercise-stub",
        ),
        solution(
            'answer = "Predicted at the position before it; none comes before the first."\n'
            "check_first_token_answer(answer)"
        ),
        md("## What comes next\n\nA cell after the exercises."),
        code("print(x.sum().item())"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def execute(nb: dict, tmp_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(copy.deepcopy(nb))
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def out(cell: dict) -> str:
    return course.stdout(cell)


def test_small_notebook_book_and_student_versions_run(tmp_path):
    book = execute(small_notebook(), tmp_path)  # raises if any cell fails
    assert course.problems(book, 2) == []
    for cell in book.cells:
        if course.is_stub(cell):
            assert out(cell).startswith("… check_") and "not yet" in out(cell)
        if course.is_solution(cell):
            assert out(cell).startswith("✓ check_")
    student = course.student_notebook(book)
    assert not [c for c in student["cells"] if course.is_solution(c)]
    ran = execute(student, tmp_path)  # top to bottom, every exercise still open
    lines = [out(c) for c in ran.cells if course.is_stub(c)]
    assert lines == [
        "… check_ema: not yet implemented (fill in ema)\n",
        "… check_prediction: not yet answered (write it above, run again)\n",
        "… check_first_token_answer: not yet answered (write it above, run again)\n",
    ]
    assert out(ran.cells[-1]) == "0.0\n"


def broken(change) -> list[str]:
    """The checker's complaints about the small notebook (stored outputs faked) after change."""
    nb = small_notebook()
    for cell in nb.cells:
        if course.is_stub(cell):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="… not yet\n")]
        if course.is_solution(cell):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓ check_\n")]
    assert course.problems(nb, 2) == []
    change(nb.cells)
    return course.problems(nb, 2)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda c: c[2].update(source="## Exercises\n\n### Exercise 1: old style"), "write it as"),
        (lambda c: c[2].update(source="## Exercises\n\n### Exercise 2.1 (code): x"), "not one of"),
        (lambda c: c[2].update(source="## Exercises\n\n### Exercise 3.1 (implement): x"),
         "this is chapter 2"),
        (lambda c: c[5].update(source="### Exercise 2.5 (predict): x"), "expected number 2.2"),
        (lambda c: c[4].metadata.pop("cellView"), '"cellView": "form"'),
        (lambda c: c[4].metadata.pop("jupyter"), "source_hidden"),
        (lambda c: c[4].metadata.update(tags=["solution"]), "lacks the tag(s) ['hide-cell']"),
        (lambda c: c[4].update(source=c[4].source.replace("# @title", "#")), "first line"),
        (lambda c: c[3].update(source=c[3].source.replace("check_ema(ema)", "# check_ema(ema)")),
         "calls no check_* grader"),
        (lambda c: c[4].update(source=c[4].source.replace("check_ema(", "check_cumsum(")),
         "the solution must call the stub's grader"),
        (lambda c: c[3].metadata.update(tags=[]), "exactly one 'exercise-stub' cell"),
        (lambda c: c[3].update(outputs=[]), "'not yet' line"),
        (lambda c: c[4].update(outputs=[]), "'✓' line"),
        (lambda c: c[-1].update(source="print(ema_solution)"), "defined only in a solution"),
        (lambda c: c.__delitem__(slice(5, 11)), "1 exercises; a chapter has 2-4"),
    ],
)  # fmt: skip
def test_checker_names_what_breaks_the_convention(change, complaint):
    found = broken(change)
    assert any(complaint in p for p in found), found

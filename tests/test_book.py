"""The book's structure: table of contents, notebooks, the Colab setup cell, README links."""

import base64
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jamba_min import course, plotting

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import setup_cell  # noqa: E402

NOTEBOOKS = setup_cell.notebooks()
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [chapter["file"] for chapter in part.get("chapters") or []]
    return files


def cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text())["cells"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "book/ holds no notebooks"


def test_toc_and_book_agree_both_ways():
    listed = toc_files()
    assert len(listed) == len(set(listed)), "a page is listed twice in _toc.yml"
    for entry in listed:
        found = [
            ROOT / f"{entry}{ext}" for ext in (".md", ".ipynb") if (ROOT / f"{entry}{ext}").exists()
        ]
        assert len(found) == 1, f"_toc.yml lists {entry}, which matches {len(found)} files"
    pages = {str(p.relative_to(ROOT).with_suffix("")) for p in ROOT.glob("book/**/*.ipynb")}
    pages |= {str(p.relative_to(ROOT).with_suffix("")) for p in ROOT.glob("book/**/*.md")}
    pages = {p for p in pages if ".ipynb_checkpoints" not in p}
    assert pages == set(listed), f"in book/ but not in _toc.yml: {pages - set(listed)}"


def test_toc_has_the_five_parts():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    captions = [part["caption"] for part in toc["parts"]]
    assert captions == [
        "Foundations",
        "The selective scan",
        "Attention and experts",
        "Jamba",
        "Appendix",
    ]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_a_title(nb):
    first = cells(nb)[0]
    assert first["cell_type"] == "markdown"
    assert re.match(r"# \S", "".join(first["source"])), "first cell must be a '# Title' heading"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_headings_are_consecutive(nb):
    level = 0
    for cell in cells(nb):
        if cell["cell_type"] != "markdown":
            continue
        in_fence = False
        for line in "".join(cell["source"]).splitlines():
            if line.lstrip().startswith(("```", ":::")):
                in_fence = not in_fence
            m = re.match(r"(#+) ", line)
            if m and not in_fence:
                assert len(m.group(1)) <= level + 1, f"heading skips a level: {line!r}"
                level = len(m.group(1))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_first_code_cell_is_the_setup_cell(nb):
    code = [c for c in cells(nb) if c["cell_type"] == "code"]
    assert code, "no code cells"
    first = code[0]
    assert "".join(first["source"]) == setup_cell.setup_cell_source()
    assert f"git+{REPO_URL}@" in "".join(first["source"])
    # hidden in the rendered book (it prints a line), visible and run in Colab and Jupyter
    assert set(first["metadata"].get("tags", [])) == {"remove-cell", "nbval-ignore-output"}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stores_its_outputs(nb):
    code = [c for c in cells(nb) if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    unrun = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unrun, f"code cells {unrun} were stored unexecuted; nbval would not compare them"
    assert any(c["outputs"] for c in code), "no stored outputs at all"


def test_setup_cell_check_tool_agrees():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "setup_cell.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def run_setup_cell(monkeypatch, installed: set[str]) -> list[list[str]]:
    """Execute the setup cell with pip stubbed out; return the commands it would run."""
    import importlib.util

    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: real_find_spec(name) if name in installed else None,
    )
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.delenv("JAMBA_MIN_REPOSITORY", raising=False)
    exec(setup_cell.setup_cell_source(), {})
    return calls


def test_setup_cell_does_nothing_where_jamba_min_is_installed(monkeypatch):
    assert (
        run_setup_cell(monkeypatch, installed={"jamba_min", "einops", "safetensors", "tqdm"}) == []
    )


def test_setup_cell_installs_from_the_repository_but_never_torch_or_triton(monkeypatch):
    calls = run_setup_cell(monkeypatch, installed=set())
    assert calls[0][-2:] == ["--no-deps", f"git+{REPO_URL}@{CONFIG['repository']['branch']}"]
    assert calls[1][-3:] == ["einops", "safetensors", "tqdm"]
    assert not any(re.match(r"(torch|triton)\b", arg) for call in calls for arg in call)


def test_setup_cell_repository_is_overridable_by_one_setting(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setenv("JAMBA_MIN_REPOSITORY", "/some/local/clone")
    exec(setup_cell.setup_cell_source(), {})
    assert calls[0][-2:] == ["--no-deps", "/some/local/clone"]


def test_setup_cell_installs_every_light_runtime_dependency():
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.match(r"[A-Za-z0-9_.-]+", d).group(0) for d in deps}
    assert set(setup_cell.light_dependencies()) == names - setup_cell.NOT_INSTALLED_BY_CELL


def test_readme_links_every_chapter_to_colab():
    readme = (ROOT / "README.md").read_text()
    slug = REPO_URL.removeprefix("https://github.com/")
    for nb in NOTEBOOKS:
        rel = nb.relative_to(ROOT).as_posix()
        link = f"https://colab.research.google.com/github/{slug}/blob/main/{rel}"
        assert link in readme, f"README lacks the Colab link of {rel}"
    for owner_repo in re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)", readme):
        assert owner_repo == slug, f"a Colab badge opens {owner_repo}, not {slug}"


def test_readme_python_runs(tmp_path, monkeypatch):
    """The README's Python examples run as written (in a scratch folder)."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "README has no ```python block"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    assert (tmp_path / "tiny-jamba" / "model.safetensors").exists()


@pytest.mark.parametrize("found", [None, "4.46.0"])
def test_setup_cell_installs_transformers_when_missing_or_too_old(monkeypatch, found):
    import importlib.metadata

    def version(name):
        if found is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return found

    monkeypatch.setattr(importlib.metadata, "version", version)
    calls = run_setup_cell(monkeypatch, installed={"jamba_min", "einops", "safetensors", "tqdm"})
    assert (
        calls == [calls[0]] and calls[0][-1] == f"transformers>={setup_cell.transformers_minimum()}"
    )
    assert not any(re.match(r"(torch|triton)\b", arg) for arg in calls[0])


def test_setup_cell_says_what_it_did_in_one_line(monkeypatch, capsys):
    run_setup_cell(monkeypatch, installed={"jamba_min", "einops", "safetensors", "tqdm"})
    assert capsys.readouterr().out == "setup: everything was already installed\n"


def png_widths(nb: Path) -> list[tuple[int, int]]:
    """(cell index, natural width in px) of every PNG a notebook stores."""
    found = []
    for i, cell in enumerate(cells(nb)):
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                header = base64.b64decode("".join(png)[:64])
                assert header[:8] == b"\x89PNG\r\n\x1a\n", f"cell {i}: not a PNG"
                found.append((i, struct.unpack(">I", header[16:20])[0]))
    return found


def is_plot_cell(cell: dict) -> bool:
    code = "".join(cell["source"])
    return cell["cell_type"] == "code" and bool(re.search(r"\bplt\.|\bfigure\(|diagram\(", code))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_fit_the_column(nb):
    """Shown at 1280 px, the text column is 676 px: a wider PNG is shrunk, and its text with it.

    Figures are made FIG_WIDTH wide with the book's style, whose smallest font (10.5 pt) is then
    14.6 px on the page, above the captions' 14.4 px.
    """
    wide = [(i, w) for i, w in png_widths(nb) if w > 680]
    assert not wide, f"figures wider than the column (cell, px): {wide}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_use_the_book_style(nb):
    code = ["".join(c["source"]) for c in cells(nb) if c["cell_type"] == "code"]
    if not any(is_plot_cell(c) for c in cells(nb)):
        pytest.skip("no figures")
    assert sum("use_book_style()" in c for c in code) == 1, "call use_book_style() once"
    small = [
        m.group(0)
        for c in code
        for m in re.finditer(r"(fontsize|labelsize)\s*=\s*([0-9.]+)", c)
        if float(m.group(2)) < plotting.MIN_FONT_PT
    ]
    assert not small, f"fonts below {plotting.MIN_FONT_PT} pt: {small}"
    assert not [c for c in code if "tight_layout" in c], "the style's constrained layout does this"
    assert not [c for c in code if "style.use" in c], "one style: use_book_style()"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_plotting_code_is_hidden(nb):
    """A cell that draws a figure keeps its code out of the reader's way (tag hide-input)."""
    shown = [
        i
        for i, c in enumerate(cells(nb))
        if is_plot_cell(c)
        and ".show()" in "".join(c["source"])
        and not {"hide-input", "remove-input", "remove-cell"} & set(c["metadata"].get("tags", []))
    ]
    assert not shown, f"plotting cells without hide-input: {shown}"


# --------------------------------------------------------------------------- exercises
# Chapters whose exercises do not follow the exercise-cell convention yet (see the docstring of
# jamba_min/course.py): each is converted by its own change, which removes it from this set.
# test_not_yet_converted_is_up_to_date fails as soon as a listed chapter passes, so the set can
# only shrink.
NOT_YET_CONVERTED: set[str] = set()


@pytest.mark.parametrize(
    "nb", [nb for nb in NOTEBOOKS if nb.name not in NOT_YET_CONVERTED], ids=lambda p: p.name
)
def test_exercises_follow_the_convention(nb):
    """2-4 exercises: '### Exercise N.k (kind): title', one stub cell, one hidden solution cell.

    Also: the stub calls a grader and the solution the same one; the stored outputs show the
    stub's "not yet" line and the solution's "✓" line; no later cell needs a solution's names.
    """
    problems = course.problems(json.loads(nb.read_text()), course.chapter_number(nb))
    assert not problems, "\n".join(problems)


def test_not_yet_converted_is_up_to_date():
    names = {nb.name for nb in NOTEBOOKS}
    assert names >= NOT_YET_CONVERTED, f"not in book/: {NOT_YET_CONVERTED - names}"
    done = [
        name
        for name in sorted(NOT_YET_CONVERTED)
        if not course.problems(json.loads((ROOT / "book" / name).read_text()),
                               course.chapter_number(Path(name)))
    ]  # fmt: skip
    assert not done, f"follow the convention now; remove them from NOT_YET_CONVERTED: {done}"


# --------------------------------------------------------------------------- publishing
def build_commands(text: str) -> list[str]:
    return [
        " ".join(line.split())
        for line in text.splitlines()
        if re.search(r"\bdev\.py book\b", line) and not line.lstrip().startswith("#")
    ]


def test_pages_workflow_builds_like_ci():
    """The site that GitHub Pages publishes is built by the command CI builds and checks."""
    workflow = ROOT / ".github" / "workflows" / "pages.yml"
    spec = yaml.safe_load(workflow.read_text())
    steps = [step for job in spec["jobs"].values() for step in job.get("steps", [])]
    runs = "\n".join(step.get("run", "") for step in steps)
    ci = build_commands((ROOT / ".ci" / "run").read_text())
    assert len(ci) == 1, ".ci/run should build the book once"
    assert [c.removeprefix("- run: ").strip() for c in build_commands(runs)] == ci
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert "actions/upload-pages-artifact" in uses and "actions/deploy-pages" in uses
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert uploads[0]["with"]["path"] == "_build/html"
    on = spec.get("on", spec.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on

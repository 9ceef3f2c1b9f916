"""Colab, imitated: a fresh environment that has torch but not jamba_min runs a notebook.

A new virtual environment sees the packages of this one (torch, transformers, ipykernel …)
through a ``.pth`` file pointing at a folder of links to them, minus jamba_min and its editable
hook, so that, as in Colab, ``import jamba_min`` fails at first. A notebook of the book, with
the canonical setup cell of tools/setup_cell.py as its first code cell, runs in a kernel of that
environment with ``JAMBA_MIN_REPOSITORY`` pointing at a local clone of this repository: the cell
installs jamba_min from the clone (offline: no index, no build isolation), then the rest of the
notebook runs. About 30 s.
"""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import setup_cell  # noqa: E402

NOTEBOOK = "book/00_jamba_at_a_glance.ipynb"  # small, and needs nothing but jamba_min


def fresh_environment(tmp: Path) -> Path:
    """A virtual environment with this one's packages but not jamba_min; returns its python."""
    links = tmp / "site"
    links.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("jamba_min", "__editable__")) or entry.suffix == ".pth":
            continue  # jamba_min, its editable finder, and .pth hooks stay behind
        (links / entry.name).symlink_to(entry)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp / "venv"], check=True)
    python = tmp / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "host-packages.pth").write_text(f"{links}\n")
    return python


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git repository to clone")
def test_setup_cell_installs_from_a_clone_and_the_notebook_runs(tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    python = fresh_environment(tmp_path)
    work = tmp_path / "work"  # the kernel's folder: nothing importable next to it
    work.mkdir()
    probe = "import importlib.util as u; print(u.find_spec('jamba_min'), u.find_spec('torch'))"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    seen = subprocess.run([python, "-c", probe], cwd=work, env=env, capture_output=True, text=True)
    assert seen.stdout.startswith("None ModuleSpec"), seen.stdout + seen.stderr

    # a kernel of the fresh environment, found through JUPYTER_PATH
    kernel = tmp_path / "jupyter" / "kernels" / "fresh"
    kernel.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "fresh", "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for name in ("PYTHONPATH", "VIRTUAL_ENV"):
        monkeypatch.delenv(name, raising=False)
    # the one setting the setup cell reads, and pip kept offline
    monkeypatch.setenv("JAMBA_MIN_REPOSITORY", f"git+file://{clone.as_posix()}")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")  # i.e. --no-build-isolation
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")

    # the clone's notebook, with this checkout's setup cell (what the lead's rewrite writes)
    nb = nbformat.read(clone / NOTEBOOK, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells[first] = nbformat.v4.new_code_cell(setup_cell.setup_cell_source())
    nb.cells.insert(
        first + 1,
        nbformat.v4.new_code_cell("import jamba_min\n\nprint(jamba_min.__file__)"),
    )
    NotebookClient(
        nb, kernel_name="fresh", timeout=300, resources={"metadata": {"path": str(work)}}
    ).execute()

    said = "".join(o.get("text", "") for o in nb.cells[first].outputs)
    assert said.startswith("setup: installed jamba_min"), said
    where = "".join(o.get("text", "") for o in nb.cells[first + 1].outputs).strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where  # installed, not this checkout
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]  # fmt: skip
    assert not errors

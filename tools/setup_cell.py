"""The canonical first code cell of every notebook, and a tool to keep the notebooks in sync.

In Colab (or any environment without jamba_min) the cell installs the package from the book's
repository, and it installs the transformers version that chapters 5-8 compare against when the
environment has none or an older one; everywhere else it does nothing but say so, in one line. It
never installs torch or triton: Colab's builds match its GPU drivers, and a reinstall would
download gigabytes and could break them.

    python tools/setup_cell.py          # rewrite the first code cell of every notebook in book/
    python tools/setup_cell.py --check  # exit 1 if any notebook's cell differs
    python tools/setup_cell.py book/09_training.ipynb  # only the notebooks named

The repository URL comes from ``_config.yml`` (its one home); the environment variable
``JAMBA_MIN_REPOSITORY`` overrides it when the cell runs (``tests/test_colab.py`` points it at a
local clone). The small dependencies come from ``pyproject.toml``. ``tests/test_book.py``
checks that every notebook carries exactly this cell.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TAGS = ["remove-cell", "nbval-ignore-output"]  # hidden in the book, visible in Colab
# Present in every environment that runs the notebooks (Colab included) or too big to touch.
NOT_INSTALLED_BY_CELL = {"torch", "triton", "numpy"}

TEMPLATE = """\
# Setup for Colab and other fresh environments: install jamba_min from the
# book's repository when it is missing, and the transformers that chapters 5-8
# compare against when it is missing or older than {transformers_min}. torch and
# triton are never (re)installed. To install from a fork or a local clone, set
# the environment variable JAMBA_MIN_REPOSITORY to what pip should install.
import importlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys

REPOSITORY = os.environ.get(
    "JAMBA_MIN_REPOSITORY", "git+{repo_url}@{branch}"
)
pip = [sys.executable, "-m", "pip", "install", "--quiet"]
did = []
if importlib.util.find_spec("jamba_min") is None:
    subprocess.run([*pip, "--no-deps", REPOSITORY], check=True)
    deps = {light_deps}
    missing = [p for p in deps if importlib.util.find_spec(p) is None]
    if missing:
        subprocess.run([*pip, *missing], check=True)
    did.append("installed jamba_min " + " ".join(missing))
try:
    have = importlib.metadata.version("transformers")
except importlib.metadata.PackageNotFoundError:
    have = None
if have is None or int(have.split(".")[0]) < {transformers_major}:
    subprocess.run([*pip, "transformers>={transformers_min}"], check=True)
    did.append(f"installed transformers (found {{have}})")
importlib.invalidate_caches()
print("setup:", "; ".join(did) or "everything was already installed")"""


def repository() -> tuple[str, str]:
    """``(url, branch)`` of the book's repository, read from ``_config.yml``."""
    import yaml  # PyYAML comes with jupyter-book

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def light_dependencies() -> list[str]:
    """Runtime dependencies of jamba_min (from its installed metadata) that the cell may install.

    Their distribution names are also their import names (einops, safetensors, tqdm).
    """
    from importlib.metadata import requires

    names = [re.match(r"[A-Za-z0-9_.-]+", req).group(0) for req in requires("jamba-min") or []]
    extras = [req for req in requires("jamba-min") or [] if "extra ==" in req]
    extra_names = {re.match(r"[A-Za-z0-9_.-]+", req).group(0) for req in extras}
    return sorted(set(names) - extra_names - NOT_INSTALLED_BY_CELL)


def transformers_minimum() -> str:
    """The oldest transformers the tests accept, from pyproject.toml's ``test`` extra ("5.0")."""
    pins = re.findall(r'"transformers>=([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    return pins[0]  # the test and bench extras name the same minimum


def setup_cell_source() -> str:
    """The exact source of the canonical setup cell."""
    url, branch = repository()
    deps = "(" + ", ".join(f'"{d}"' for d in light_dependencies()) + ")"
    least = transformers_minimum()
    return TEMPLATE.format(
        repo_url=url,
        branch=branch,
        light_deps=deps,
        transformers_min=least,
        transformers_major=int(least.split(".")[0]),
    )


def notebooks() -> list[Path]:
    """Every chapter notebook of the book."""
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def setup_cell() -> dict:
    """The canonical cell as notebook JSON; it prints nothing where jamba_min is installed."""
    return {
        "cell_type": "code",
        "execution_count": 1,
        "id": "colab-setup",
        "metadata": {"tags": list(TAGS)},
        "outputs": [],
        "source": setup_cell_source().splitlines(keepends=True),
    }


def sync(path: Path, check: bool) -> bool:
    """Make the first code cell of ``path`` the canonical cell; return whether it already was."""
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    first = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), None)
    want = setup_cell()
    if first is not None:
        have = cells[first]
        same = "".join(have["source"]) == "".join(want["source"]) and sorted(
            have.get("metadata", {}).get("tags", [])
        ) == sorted(TAGS)
        if same:
            if "id" not in have and not check:  # nbformat ≥ 4.5 wants an id on every cell
                have["id"] = "colab-setup"
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            return True
        if not check:
            cells[first] = want
    elif not check:
        # after the title cell
        cells.insert(1 if cells else 0, want)
    if not check:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return False


def main(argv: list[str]) -> int:
    check = "--check" in argv
    named = [Path(a).resolve() for a in argv if a != "--check"]
    stale = [p for p in (named or notebooks()) if not sync(p, check)]
    for p in stale:
        print(f"{p.relative_to(ROOT)}: {'setup cell differs' if check else 'setup cell rewritten'}")
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

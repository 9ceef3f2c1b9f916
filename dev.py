#!/usr/bin/env python3
"""One entry point for a fresh machine that has only Python 3.10+.

    python3 dev.py test [pytest args]        # install what is needed, run tests + every notebook
    python3 dev.py book [jupyter-book args]  # install what is needed, build the site in _build/html
    python3 dev.py site-check [args]         # open every built page in headless Chromium, check it
    python3 dev.py install                   # only set up .venv

Everything goes into ``.venv`` next to this file. The first run takes a few minutes (torch,
triton, Jupyter Book); later runs reinstall only when ``requirements.txt`` or ``pyproject.toml``
changed. torch comes first and on its own: on Linux without an NVIDIA GPU the CPU build is tried
first (PyPI's default Linux wheel carries several GB of CUDA libraries). Set ``JAMBA_MIN_TORCH``
to choose the torch requirement yourself, e.g. ``JAMBA_MIN_TORCH="torch==2.13.0"``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".jamba-min-installed"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def venv_bin(name: str) -> Path:
    folder = "Scripts" if os.name == "nt" else "bin"
    suffix = ".exe" if os.name == "nt" else ""
    return VENV / folder / f"{name}{suffix}"


def run(*cmd: str | Path, check: bool = True) -> int:
    print("$", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check).returncode


def requirements_hash() -> str:
    h = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def install() -> None:
    """Create ``.venv`` and install torch, the requirements and jamba_min (editable)."""
    if sys.version_info < (3, 10):  # noqa: UP036 (dev.py runs on whatever python3 is)
        sys.exit(f"jamba-min needs Python 3.10 or newer; this is {platform.python_version()}")
    if not venv_bin("python").exists():
        print(f"Creating a virtual environment in {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    if STAMP.exists() and STAMP.read_text() == requirements_hash():
        return
    python = venv_bin("python")
    pip = (python, "-m", "pip", "install", "--disable-pip-version-check")
    has_torch = run(python, "-c", "import torch", check=False) == 0
    if not has_torch:
        spec = os.environ.get("JAMBA_MIN_TORCH", "torch")
        cpu_only = platform.system() == "Linux" and shutil.which("nvidia-smi") is None
        if "JAMBA_MIN_TORCH" in os.environ or not cpu_only:
            run(*pip, spec)
        elif run(*pip, "--index-url", CPU_INDEX, "--timeout", "30", spec, check=False) != 0:
            print("The CPU-only index was unreachable; installing torch from PyPI.", flush=True)
            run(*pip, spec)
    run(*pip, "-r", "requirements.txt")  # jamba_min itself (editable) and its extras
    STAMP.write_text(requirements_hash())


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("test", "book", "site-check", "install"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    install()
    env = {**os.environ, "PATH": f"{venv_bin('python').parent}{os.pathsep}{os.environ['PATH']}"}
    if command == "test":
        cmd = [str(venv_bin("python")), "-m", "pytest", *rest]
    elif command == "book":
        cmd = [str(venv_bin("jupyter-book")), "build", ".", *rest]
    elif command == "site-check":  # needs Debian's chromium (apt-get install chromium)
        cmd = [str(venv_bin("python")), str(ROOT / "tools" / "check_site.py"), *rest]
    else:
        return 0
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Root pytest configuration: strict nbval over book/, with a sanitize file for what varies.

``pytest`` from the repository root runs the unit tests in ``tests/`` and executes every notebook
in ``book/`` (options in ``pyproject.toml``). Notebook outputs are compared strictly; the
patterns in ``nbval_sanitize.cfg`` mask what legitimately differs from run to run.
"""

from pathlib import Path

import pytest

# Import jamba_min before any test module imports transformers (which imports triton): on a
# machine without a GPU, jamba_min turns on Triton's interpreter, which only works if it is set
# before the first `import triton`.
import jamba_min  # noqa: F401

ROOT = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    # nbval reads this path relative to the current directory; anchor it to the repository.
    if config.pluginmanager.hasplugin("nbval"):
        config.option.nbval_sanitize_with = str(ROOT / "nbval_sanitize.cfg")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Unit tests first, notebooks after: a broken package fails fast, before minutes of kernels.
    items.sort(key=lambda item: item.path.suffix == ".ipynb")

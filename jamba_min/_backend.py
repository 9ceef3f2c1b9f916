"""Decide how Triton runs, before anything imports it (chapter 4).

Triton compiles kernels for a GPU. Without one, its interpreter runs the same kernels on the CPU
with NumPy, but only if ``TRITON_INTERPRET=1`` is in the environment when triton is first
imported. ``jamba_min/__init__.py`` imports this module first, so that ``import jamba_min`` on a
machine without a GPU makes ``backend="triton"`` work. A value the user set is never changed.
"""

from __future__ import annotations

import os
import sys
import warnings

import torch


def configure_triton() -> None:
    if "TRITON_INTERPRET" in os.environ or torch.cuda.is_available():
        return
    if "triton" in sys.modules:
        warnings.warn(
            "triton was imported before jamba_min on a machine without a GPU, so its kernels "
            "cannot run: the Triton interpreter must be enabled before the first `import triton`."
            " Set TRITON_INTERPRET=1 in the environment, or import jamba_min first.",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    os.environ["TRITON_INTERPRET"] = "1"


configure_triton()

"""Helpers shared by the benchmark scripts in this folder (not part of the package).

Timing. The CPU benchmarks keep their own loop rather than ``torch.utils.benchmark.Timer``:

- ``moe.py`` and ``model.py`` compare implementations with :func:`interleaved`, rounds that call
  them in turn and keep each one's best time. This was chosen to survive a noisy shared VM, whose
  speed drifts by tens of percent from minute to minute: a slow spell falls on every
  implementation rather than on whichever ``Timer`` happened to be measuring.
- ``scan.py`` times one implementation per process, best of a few calls, and takes the growth of
  the process's peak memory over exactly those calls; its slowest baseline takes most of a minute
  a call and runs once, where ``Timer.timeit`` and ``blocked_autorange`` add calls of their own.

``triton_gpu.py`` uses ``triton.testing.do_bench``, which synchronises the GPU around the calls.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best time in seconds of each function over ``rounds`` rounds that call them in turn, so
    that a slow spell of a shared machine falls on all of them rather than on one."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the script's docstring as its description and the ``--json`` option."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(description=doc, formatter_class=fmt)
    p.add_argument("--json", metavar="PATH", help="also write the results to this file")
    return p


def write_json(report: dict, path: str | None) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=1)

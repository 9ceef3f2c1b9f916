"""The book's figure style and the few drawing helpers its diagrams share.

Every chapter calls :func:`use_book_style` once, makes figures no wider than :data:`FIG_WIDTH`
(the text column of the rendered book) and draws diagrams with :func:`diagram`, :func:`box` and
:func:`arrow`, so that text in every figure is at least as large as the book's captions (14.4 px)
at the size the page shows it. Needs matplotlib (``pip install "jamba-min[book]"``); importing
this module is the only place the package touches it.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

DPI = 100
"""Pixels per inch of the stored PNGs: the book shows them at (nearly) their natural size."""

FIG_WIDTH = 6.6
"""Figure width in inches: 660 px at :data:`DPI`, inside the book's output column at a
1280 px window (676 px), so that a figure is shown at its natural size, not shrunk."""

MIN_FONT_PT = 10.5
"""Smallest font in any figure: 10.5 pt = 14.6 px at :data:`DPI`, above the captions' 14.4 px."""

COLORS = {
    "attention": "#d62728",
    "mamba": "#1f77b4",
    "moe": "#ff7f0e",
    "mlp": "#bcbd22",
    "norm": "#7f7f7f",
    "data": "#e8e8e8",
    "ssm": "#9467bd",
    "conv": "#2ca02c",
}
"""One colour per kind of layer, the same in every chapter's plots and diagrams."""

STYLE: dict[str, Any] = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.figsize": (FIG_WIDTH, 3.4),
    "figure.constrained_layout.use": True,
    "font.size": 11.0,
    "axes.titlesize": 11.5,
    "axes.labelsize": 11.0,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": 12.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "image.cmap": "viridis",
}
"""The rcParams :func:`use_book_style` sets."""


def use_book_style() -> None:
    """Set matplotlib's defaults to the book's style (:data:`STYLE`) for this process."""
    mpl.rcParams.update(STYLE)


def figure(
    nrows: int = 1, ncols: int = 1, height: float = 3.4, **kwargs: Any
) -> tuple[Figure, Any]:
    """``plt.subplots`` at the column's width: ``height`` inches tall, at most two panels a row.

    A third panel in a row would leave each about 220 px, too narrow for readable ticks: stack
    rows instead.
    """
    if ncols > 2:
        raise ValueError(f"ncols: at most 2 panels per row fit the column, got {ncols}")
    return plt.subplots(nrows, ncols, figsize=(FIG_WIDTH, height), **kwargs)


def diagram(width: float, height: float, *, inches: float = FIG_WIDTH) -> tuple[Figure, Axes]:
    """An empty canvas for a diagram, in data units: x in [0, width], y in [0, height].

    The figure is ``inches`` wide and keeps the aspect ratio of the canvas, so one data unit is
    as long across as up; axes, ticks and grid are off.
    """
    fig = plt.figure(figsize=(inches, inches * height / width), layout="none")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str = "",
    *,
    color: str = COLORS["data"],
    alpha: float = 1.0,
    fontsize: float = 11.0,
    textcolor: str = "black",
    **kwargs: Any,
) -> FancyBboxPatch:
    """A rounded box with its lower-left corner at ``(x, y)`` and ``text`` at its centre."""
    patch = FancyBboxPatch(
        (x, y),
        w,
        h,
        boxstyle="round,pad=0,rounding_size=0.08",
        facecolor=color,
        edgecolor="black",
        linewidth=1.0,
        alpha=alpha,
        **kwargs,
    )
    ax.add_patch(patch)
    if text:
        ax.text(
            x + w / 2,
            y + h / 2,
            text,
            ha="center",
            va="center",
            fontsize=max(fontsize, MIN_FONT_PT),
            color=textcolor,
        )
    return patch


def arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    text: str = "",
    *,
    color: str = "black",
    fontsize: float = MIN_FONT_PT,
    **kwargs: Any,
) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end``; ``text`` (e.g. a shape) is written beside its middle."""
    patch = FancyArrowPatch(
        start,
        end,
        arrowstyle="-|>",
        mutation_scale=12,
        color=color,
        linewidth=1.2,
        shrinkA=0,
        shrinkB=0,
        **kwargs,
    )
    ax.add_patch(patch)
    if text:
        ax.text(
            (start[0] + end[0]) / 2 + 0.08,
            (start[1] + end[1]) / 2,
            text,
            ha="left",
            va="center",
            fontsize=max(fontsize, MIN_FONT_PT),
            color=color,
        )
    return patch

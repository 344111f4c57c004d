"""Figures and kernel-free interactive widgets for the book.

Figures are drawn as SVG with real text, for the width the book's column shows them at:
:func:`use_book_style` sets the fonts and the SVG output once per chapter, and
:func:`figure_svg` turns a figure into markup that scales with the page (widget frames).

A widget on a static web page has no Python behind it, so a control cannot call back into
Python to redraw a plot. :func:`explorer` therefore draws every state once, when the page is
built, and lets the browser switch between them: each control's ``index`` is ``jslink``-ed to
the ``selected_index`` of an ipywidgets ``Stack`` that holds the pre-drawn frames. The same
widget works live in Jupyter (the link runs in the front end there too) and on the rendered
page, where myst-nb embeds the widget state and the page's own ``embed.js`` draws it.

Example::

    def draw(radius, activation):
        fig, ax = plt.subplots()
        ...
        return fig

    explorer(draw, radius=[0.5, 0.9, 1.1], activation=["tanh", "relu"],
             caption="What the picture shows.", alt="Norms for radius {radius}, {activation}")
"""
from __future__ import annotations

import html
import io
import itertools
import re
import sys
from typing import Callable, Iterable, Sequence

__all__ = ["BOOK_STYLE", "explorer", "figure_svg", "glue_spread", "progress_bar", "use_book_style"]

# The book's column is about 690 px wide: a figure 9.5 inches wide is shown at about 3/4 of its
# natural SVG size (96 px per inch), so 10.5-point text lands near 10.5 px on the page.
BOOK_STYLE = {
    "svg.fonttype": "none",           # text stays text: sharp at any zoom, and measurable
    "svg.hashsalt": "rnnkit-book",    # the same figure gives the same SVG on every build
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "legend.title_fontsize": 10.5,
    "figure.titlesize": 12,
    "figure.figsize": (7.5, 3.6),
}

_FONT_LIST = re.compile(r"font-family: 'DejaVu Sans'[^;\"]*")
_GEOMETRY = re.compile(r'(\s(?:d|x|y|x1|x2|y1|y2|points|transform)=")([^"]*)"')
_LONG_DECIMAL = re.compile(r"(\d+\.\d)\d+")
_HEADER = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<metadata>.*?</metadata>|<!--.*?-->", re.S)


def use_book_style() -> None:
    """Draw this notebook's figures the book's way: SVG output, fonts sized for the column."""
    import matplotlib as mpl

    mpl.rcParams.update(BOOK_STYLE)
    try:  # inside IPython: show figures as SVG instead of PNG
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    set_matplotlib_formats("svg", bbox_inches="tight", metadata={"Date": None})


def figure_svg(fig, alt: str = "", close: bool = True) -> str:
    """A matplotlib figure as inline SVG markup that scales with its container.

    The text stays text (``svg.fonttype`` none); ``alt`` becomes the drawing's accessible name.
    ``close=False`` keeps the figure open, for a figure redrawn frame after frame.
    """
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rnnkit-book"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    if close:
        plt.close(fig)
    svg = _FONT_LIST.sub("font-family: 'DejaVu Sans', Verdana, sans-serif", buffer.getvalue())
    svg = _HEADER.sub("", svg).strip()
    # coordinates to a tenth of a point: invisible on screen, a third fewer bytes
    svg = _GEOMETRY.sub(lambda m: m.group(1) + _LONG_DECIMAL.sub(r"\1", m.group(2)) + '"', svg)
    svg = re.sub(r'\s*transform="rotate\(-0 [^"]*\)"', "", svg)  # no-op rotations
    svg = re.sub(r">\s+<", "><", svg)  # indentation between tags
    width = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', svg)
    max_width = f"max-width:{float(width.group(1)) * 4 / 3:.0f}px;" if width else ""
    label = html.escape(alt, quote=True)
    return re.sub(r'<svg([^>]*?)\swidth="[^"]*"\s+height="[^"]*"',
                  rf'<svg\1 style="width:100%;{max_width}height:auto" role="img" aria-label="{label}"',
                  svg, count=1)


def progress_bar(iterable: Iterable, desc: str = "", total: int | None = None, **options):
    """A tqdm progress bar over ``iterable`` that also leaves one line on a static page.

    While it runs it is tqdm's text bar on standard error, redrawn in place. When it closes (the
    loop ends) its last state is printed once on standard output, e.g.
    ``training: 100%|█████| 600/600 [00:07<00:00, 81.2it/s, loss=1.62]``. A book cell tagged
    ``remove-stderr`` thus shows the finished bar and not every redraw (myst-nb would keep each
    flushed redraw as a line of its own). Extra ``options`` go to tqdm;
    ``bar.set_postfix(loss=...)`` shows a number beside the bar.
    """
    from tqdm import tqdm

    class TextBar(tqdm):
        def close(self):
            if self.disable:
                return super().close()
            last = str(self)
            super().close()
            print(last, file=sys.stdout, flush=True)

    return TextBar(iterable, desc=desc, total=total, file=sys.stderr, ncols=options.pop("ncols", 72),
                   mininterval=options.pop("mininterval", 0.5), **options)


def glue_spread(name: str, values) -> "np.ndarray":
    """Put a result that depends on the seed on the page: glue the mean of the per-seed
    ``values`` as ``name`` and their smallest and largest as ``name_lo`` and ``name_hi`` (for
    text such as "6.05 on average, 5.95 to 6.12 over the seeds"). Returns the values as a
    float array, for the assertions that check a claim for every seed."""
    import numpy as np
    from myst_nb import glue

    values = np.asarray(values, dtype=float)
    glue(name, float(values.mean()), display=False)
    glue(f"{name}_lo", float(values.min()), display=False)
    glue(f"{name}_hi", float(values.max()), display=False)
    return values


def _frame_widget(drawn, alt: str):
    """One pre-drawn state as a widget: a figure or a string becomes an HTML block."""
    import ipywidgets as widgets

    if hasattr(drawn, "savefig"):
        drawn = figure_svg(drawn, alt)
    if isinstance(drawn, str):
        frame = widgets.HTML(f'<div class="rnnkit-frame">{drawn}</div>')
        return frame
    if isinstance(drawn, widgets.Widget):
        return drawn
    raise TypeError(
        f"the draw function must return a matplotlib figure, an HTML or SVG string or a widget, "
        f"got {type(drawn).__name__}"
    )


def _control(name: str, values: Sequence, description: str | None):
    """A slider for numbers, toggle buttons for a few labels, a dropdown for many."""
    import ipywidgets as widgets

    label = description or name
    options = [(str(v), i) for i, v in enumerate(values)]
    style = {"description_width": "initial"}
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        control = widgets.SelectionSlider(
            options=options, value=0, description=label, continuous_update=True, style=style,
            layout=widgets.Layout(width="100%", max_width="420px"),
        )
    elif len(values) <= 5:
        control = widgets.ToggleButtons(options=options, value=0, description=label, style=style)
    else:
        control = widgets.Dropdown(options=options, value=0, description=label, style=style)
    control.add_class("rnnkit-control")
    return control


def explorer(draw: Callable, *, labels: dict | None = None, caption: str = "", alt: str = "",
             progress: bool = False, **axes: Sequence):
    """Pre-draw ``draw(**combination)`` for every combination of ``axes`` and return a widget
    whose controls switch between the drawings, with or without a kernel.

    ``axes`` maps each keyword of ``draw`` to the values its control offers (numbers give a
    slider, up to five labels give toggle buttons, more give a dropdown). ``labels`` may rename
    controls. The first value of each axis is shown first. ``caption`` (HTML) is shown under the
    drawings; ``alt`` describes each drawn figure for readers who cannot see it, formatted with
    the combination, e.g. ``"loss curve for threshold {threshold}"``.
    """
    import ipywidgets as widgets

    if not axes:
        raise ValueError("explorer needs at least one control, e.g. explorer(draw, step=range(10))")
    names = list(axes)
    values = {name: list(axes[name]) for name in names}
    for name, options in values.items():
        if not options:
            raise ValueError(f"the control {name!r} has no values")
    labels = labels or {}
    controls = [_control(name, values[name], labels.get(name)) for name in names]

    combos = list(itertools.product(*(range(len(values[n])) for n in names)))
    if progress:
        combos = progress_bar(combos, desc="drawing frames")
    frames = {}
    for idx in combos:
        setting = {n: values[n][i] for n, i in zip(names, idx)}
        frames[idx] = _frame_widget(draw(**setting), alt.format(**setting))

    def nest(level: int, prefix: tuple):
        """A Stack per control, nested: the outermost follows the first control."""
        if level == len(names):
            return frames[prefix]
        children = [nest(level + 1, prefix + (i,)) for i in range(len(values[names[level]]))]
        stack = widgets.Stack(children=children, selected_index=0)
        widgets.jslink((controls[level], "index"), (stack, "selected_index"))
        return stack

    parts = [widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap")), nest(0, ())]
    if caption:
        parts.append(widgets.HTML(f'<div class="rnnkit-caption">{caption}</div>'))
    box = widgets.VBox(parts)
    box.add_class("rnnkit-explorer")
    return box

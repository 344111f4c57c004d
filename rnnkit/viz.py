"""Figures and kernel-free interactive widgets for the book.

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

    explorer(draw, radius=[0.5, 0.9, 1.1], activation=["tanh", "relu"])
"""
from __future__ import annotations

import io
import itertools
from typing import Callable, Sequence

__all__ = ["explorer", "figure_png"]


def figure_png(fig, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (keeps pages light)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _frame_widget(drawn, dpi: int):
    """One pre-drawn state as a widget: a figure becomes an Image, a string an HTML block."""
    import ipywidgets as widgets

    if isinstance(drawn, str):
        return widgets.HTML(drawn)
    if isinstance(drawn, bytes):
        return widgets.Image(value=drawn, format="png")
    if hasattr(drawn, "savefig"):
        return widgets.Image(value=figure_png(drawn, dpi), format="png")
    if isinstance(drawn, widgets.Widget):
        return drawn
    raise TypeError(
        f"the draw function must return a matplotlib figure, PNG bytes, an HTML string or a widget, "
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
            layout=widgets.Layout(width="420px"),
        )
    elif len(values) <= 5:
        control = widgets.ToggleButtons(options=options, value=0, description=label, style=style)
    else:
        control = widgets.Dropdown(options=options, value=0, description=label, style=style)
    control.add_class("rnnkit-control")
    return control


def explorer(draw: Callable, *, dpi: int = 80, labels: dict | None = None, progress: bool = False,
             **axes: Sequence):
    """Pre-draw ``draw(**combination)`` for every combination of ``axes`` and return a widget
    whose controls switch between the drawings, with or without a kernel.

    ``axes`` maps each keyword of ``draw`` to the values its control offers (numbers give a
    slider, up to five labels give toggle buttons, more give a dropdown). ``labels`` may rename
    controls. The first value of each axis is shown first.
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
        from tqdm.auto import tqdm

        combos = tqdm(combos, desc="drawing frames")
    frames = {
        idx: _frame_widget(draw(**{n: values[n][i] for n, i in zip(names, idx)}), dpi)
        for idx in combos
    }

    def nest(level: int, prefix: tuple):
        """A Stack per control, nested: the outermost follows the first control."""
        if level == len(names):
            return frames[prefix]
        children = [nest(level + 1, prefix + (i,)) for i in range(len(values[names[level]]))]
        stack = widgets.Stack(children=children, selected_index=0)
        widgets.jslink((controls[level], "index"), (stack, "selected_index"))
        return stack

    box = widgets.VBox([widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap")), nest(0, ())])
    box.add_class("rnnkit-explorer")
    return box

"""Text that collides in a figure: two text boxes that overlap, or a text outside the saved area.

A figure is read through its text (titles, axis and tick labels, annotations, legends); when two
of those overlap, or one is cut at the edge, the figure cannot be read where it matters. The
boxes are matplotlib's own: each artist's window extent from the figure's renderer after a full
draw, so the check sees what :func:`xlprompt.analysis.figures.save` writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.axis import Axis
from matplotlib.backend_bases import RendererBase
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox

TOLERANCE = 0.5  # pixels: boxes that merely touch do not collide


@dataclass(frozen=True)
class TextBox:
    """One piece of text as drawn: what it says (a legend: its entries) and its box in pixels."""

    text: str
    box: Bbox


def renderer_of(fig: Figure) -> RendererBase:
    """The renderer of ``fig``'s canvas (Agg here, the only backend xlprompt draws with)."""
    renderer: RendererBase = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg's, not the base's
    return renderer


def drawn_tick_labels(axis: Axis) -> list[Text]:
    """The tick labels ``axis`` draws: visible, non-empty, at a tick inside the view interval
    (matplotlib keeps labels of ticks outside it, which it does not draw)."""
    low, high = sorted(axis.get_view_interval())
    span = (high - low) * 1e-9
    labels = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        if not low - span <= tick.get_loc() <= high + span:
            continue
        labels += [label for label in (tick.label1, tick.label2) if label.get_visible() and label.get_text().strip()]
    return labels


def text_boxes(fig: Figure) -> list[TextBox]:
    """Every piece of text ``fig`` draws, a legend counted as one box."""
    fig.canvas.draw()  # lays everything out: positions are final only after a draw
    renderer = renderer_of(fig)
    legends = [artist for artist in fig.findobj(Legend) if artist.get_visible()]
    inside_legends = {id(text) for legend in legends for text in legend.findobj(Text)}
    axes_ticks = [(ax.xaxis, ax.yaxis) for ax in fig.axes if ax.get_visible() and ax.axison]
    all_tick_labels = {
        id(text)
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for tick in axis.get_major_ticks() + axis.get_minor_ticks()
        for text in (tick.label1, tick.label2)
    }
    texts = [
        text
        for text in fig.findobj(Text)
        if id(text) not in inside_legends
        and id(text) not in all_tick_labels
        and text.get_visible()
        and text.get_text().strip()
        and _on_visible_axes(text)
    ]
    texts += [label for pair in axes_ticks for axis in pair for label in drawn_tick_labels(axis)]
    boxes = [TextBox(text.get_text(), text.get_window_extent(renderer)) for text in texts]
    boxes += [
        TextBox(" | ".join(t.get_text() for t in legend.get_texts()), legend.get_window_extent(renderer))
        for legend in legends
    ]
    return boxes


def _on_visible_axes(text: Text) -> bool:
    axes = text.axes
    return axes is None or axes.get_visible()


def overlap(a: Bbox, b: Bbox) -> float:
    """Width of the overlap of two boxes along the axis where it is smaller (0: they do not overlap)."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, min(width, height))


def text_problems(fig: Figure) -> list[str]:
    """What makes ``fig``'s text unreadable: each pair of overlapping text boxes, and each text
    outside the area :func:`xlprompt.analysis.figures.save` writes (the tight box); empty when none."""
    boxes = text_boxes(fig)
    problems = [
        f"{a.text!r} overlaps {b.text!r}"
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if overlap(a.box, b.box) > TOLERANCE
    ]
    saved = Bbox(fig.get_tightbbox(renderer_of(fig)).get_points() * fig.dpi)
    problems += [
        f"{box.text!r} is cut at the figure's edge"
        for box in boxes
        if box.box.x0 < saved.x0 - TOLERANCE
        or box.box.x1 > saved.x1 + TOLERANCE
        or box.box.y0 < saved.y0 - TOLERANCE
        or box.box.y1 > saved.y1 + TOLERANCE
    ]
    return problems

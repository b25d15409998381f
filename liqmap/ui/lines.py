"""A Line-API widget base that repaints only the rows whose content changed.

Textual sends a dirty region as whole rows of that widget and does not diff frames, so the bytes that reach
an ssh terminal are decided here: a subclass builds ``(key, strip)`` per row, this base compares each key
with the previous frame and marks only the changed rows dirty (contiguous runs merged into one region).
``render_line`` then just returns the cached strip.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class CachedLines(Widget):
    """Holds one ``Strip`` per row and a key per row; ``set_lines`` refreshes only what changed."""

    DEFAULT_CSS = "CachedLines { height: 1fr; }"

    def __init__(self, *args, naive: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._keys: list = []
        self._strips: list[Strip] = []
        self._width = -1
        self.naive = naive  # benchmark baseline: repaint everything on every update
        self._memo = None
        self.rows_refreshed = 0  # rows marked dirty since start (tests and benchmarks read it)
        self.updates = 0

    def set_lines(self, keys: Sequence, build) -> int:
        """``keys[y]`` identifies row ``y``'s content; ``build(y)`` makes its Strip when the key changed.
        Returns the number of rows marked dirty."""
        width = self.size.width
        n = len(keys)
        full = self.naive or width != self._width or n != len(self._keys)
        old = self._keys
        strips = self._strips if not full else [Strip.blank(width)] * n
        dirty: list[int] = []
        if full:
            strips = [build(y) for y in range(n)]
            dirty = list(range(n))
        else:
            strips = list(strips)
            for y in range(n):
                if keys[y] != old[y]:
                    strips[y] = build(y)
                    dirty.append(y)
        self._keys = list(keys)
        self._strips = strips
        self._width = width
        self.updates += 1
        if not dirty:
            return 0
        self.rows_refreshed += len(dirty)
        if full:
            self.refresh()
            return n
        start = prev = dirty[0]
        for y in dirty[1:] + [None]:
            if y is not None and y == prev + 1:
                prev = y
                continue
            self.refresh(Region(0, start, width, prev - start + 1))
            if y is not None:
                start = prev = y
        return len(dirty)

    def invalidate(self) -> None:
        """Forget the cached keys: the next ``set_lines`` rebuilds and repaints every row."""
        self._keys = []
        self._memo = None  # subclasses that skip identical draws keep their inputs here

    def render_line(self, y: int) -> Strip:
        if 0 <= y < len(self._strips):
            strip = self._strips[y]
            # Between a resize and the app's redraw, show the old row cut/padded to the new width rather
            # than a blank or a ragged line (no flicker on resize).
            w = self.size.width
            return strip if strip.cell_length == w else strip.adjust_cell_length(w)
        return Strip.blank(self.size.width)

    def line_text(self, y: int) -> str:
        """Plain text of a row (tests read the screen through this)."""
        return self._strips[y].text if 0 <= y < len(self._strips) else ""

    def text(self) -> str:
        return "\n".join(s.text for s in self._strips)


class TableLines(CachedLines):
    """A focusable table that draws all its rows itself (``redraw``): a resize repaints every row, a change of
    focus redraws (the selected row's style follows focus). The reports panel and the screener share this.

    Textual calls each class's ``on_resize`` along the MRO, subclass first: a subclass that must re-lay-out
    on a resize does only that in its own ``on_resize``; the repaint follows here."""

    def redraw(self) -> None:
        raise NotImplementedError

    def on_resize(self) -> None:
        self.invalidate()
        self.redraw()

    def on_focus(self) -> None:
        self.redraw()

    def on_blur(self) -> None:
        self.redraw()


def strip_of(text: str, style: Style, width: int) -> Strip:
    return Strip([Segment(text, style)]).adjust_cell_length(width, style)

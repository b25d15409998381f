"""The app's layout for the terminal's size (part of ``LiqmapApp``): too small, compact (status bar abbreviated,
reports panel hidden unless asked for), normal and wide (the reports panel with every column); and how many
time columns the map gets at a width."""

from __future__ import annotations

from textual.widgets import Static

from .reports_table import ReportsTable

MIN_WIDTH, MIN_HEIGHT = 60, 16
COMPACT_WIDTH = 100
WIDE_WIDTH = 160  # from here the reports panel gets room for every column (venues spelled out, age, density)


def map_columns(terminal_columns: int, profile: bool = True) -> int:
    """How many time columns the map has in a terminal this wide (liqmap.tcss: the price axis, the live
    column, Hybrid's profile strip and the reports panel where it shows by default): how much history the
    demo writes at start so the first view has no empty part. ``tests/test_demo_preroll.py`` holds it to
    the real layout."""
    w = int(terminal_columns)
    if w < COMPACT_WIDTH:
        return max(w - 9 - 2 - (6 if profile else 0), 0)
    return max(w - 12 - 2 - (10 if profile else 0) - (60 if w >= WIDE_WIDTH else 46), 0)


class LayoutMixin:
    """Sizing (part of ``LiqmapApp``)."""

    def on_resize(self, event) -> None:
        # The event's size, not self.size: this handler can run before the app records the new size.
        self._layout_for_size(tuple(event.size))
        self._drawn_key = None
        self.call_after_refresh(self._tick)

    def _layout_for_size(self, size: tuple[int, int] | None = None) -> None:
        w, h = size if size is not None else self.size
        scr = self._main
        small = w < MIN_WIDTH or h < MIN_HEIGHT
        scr.set_class(small, "toosmall")
        if small:
            self._q("#toosmall", Static).update(
                f"terminal too small: {w}×{h}\nliqmap needs at least {MIN_WIDTH}×{MIN_HEIGHT}")
            return
        compact = w < COMPACT_WIDTH
        scr.set_class(compact, "compact")
        scr.set_class(w >= WIDE_WIDTH, "wide")
        show = self._reports_user_choice if self._reports_user_choice is not None else not compact
        self.show_reports = show
        self._q(ReportsTable).set_class(not show, "hidden")
        self._q("#summary").set_class(compact and not show, "shown")

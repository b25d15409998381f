"""Price axis (round labels, the last price marked) and time axis (round times, the cursor marked).

Labels sit on round prices: the label step is the "nice" number (1, 2, 2.5, 5 × 10^k) that puts a label
about every four rows, and a row is labelled when that round price falls inside it. Text comes from
``liqmap.core.buckets.label`` so an altcoin shows the decimals its bucket step needs.
"""

from __future__ import annotations

import math
import time

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from ..core.buckets import label, nice_step
from .lines import CachedLines
from .reports_table import usd  # the reports panel's compact USD, so axis and panel agree
from .viewport import Frame

ROWS_PER_LABEL = 4
MAGNET_BAR = "┃"  # the NEXT 1H magnets' rows at the axis edge


def label_step(frame: Frame) -> float:
    span = frame.zoom * frame.step * frame.sub  # price per screen row
    ls = nice_step(span * ROWS_PER_LABEL)
    # Never below one row: a label step finer than a row would label every row.
    while ls < span * (1 - 1e-9):
        ls = nice_step(ls * 2.2)
    return ls


def fit(text: str, width: int) -> str:
    return text[-width:] if len(text) > width else text.rjust(width)


def magnet_marks(frame: Frame, clusters: list[dict]) -> dict[int, tuple[str, str]]:
    """Screen row → (side, USD text) for the NEXT 1H clusters (``reports["forecast"]["clusters"]``): every row a
    cluster spans gets its side's bar on the axis, the row of its centre the expected USD, so the magnets the
    reports panel and the verdict name are found on the map at a glance. Off-screen clusters are left out."""
    marks: dict[int, tuple[str, str]] = {}
    for c in clusters or ():
        try:
            lo, hi = float(c["price_lo"]), float(c["price_hi"])
            side = "short" if str(c.get("side")) == "short" else "long"
            exp_usd = float(c.get("expected_usd") or c.get("at_risk_usd") or 0.0)
            mid = float(c.get("price") or (lo + hi) / 2)
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            continue
        rows = [y for y in range(frame.height)
                if (lambda r: r[1] > lo and r[0] < hi)(frame.row_range(y))]
        y_mid = frame.row_of_price(mid)
        for y in rows:
            if y not in marks:
                marks[y] = (side, "")
        if y_mid is not None and y_mid in marks:
            marks[y_mid] = (side, "≈" + usd(exp_usd))
    return marks


class PriceAxis(CachedLines):
    DEFAULT_CSS = "PriceAxis { width: 12; height: 1fr; }"

    def draw(self, frame: Frame, last_price: float | None, highlight: float | None,
             styles: dict[str, Style], magnets: dict[int, tuple[str, str]] | None = None) -> int:
        """Round labels, the last price (``▶``), the selected event's price (``◆``) and the NEXT 1H magnets
        (``magnet_marks``: a bar in the side's colour at the axis edge, the expected USD on the cluster's
        middle row where no price label needs the room)."""
        width = max(self.size.width, 1)
        magnets = magnets or {}
        memo = (width, frame.height, frame.bottom, frame.zoom, frame.sub, frame.step, last_price, highlight,
                id(styles), tuple(sorted(magnets.items())))
        if memo == getattr(self, "_memo", None):
            return 0  # same rows, same labels: nothing to do
        self._memo = memo
        ls = label_step(frame)
        step = frame.step
        last_y = frame.row_of_price(last_price) if last_price and math.isfinite(last_price) else None
        hl_y = frame.row_of_price(highlight) if highlight is not None else None
        keys = []
        for y in range(frame.height):
            lo, hi = frame.row_range(y)
            mag = magnets.get(y)
            if y == last_y:
                keys.append(("last", fit(label(last_price, step) + "▶", width), None))
            elif y == hl_y:
                keys.append(("hl", fit(label(highlight, step) + "◆", width), None))
            else:
                m = math.ceil(lo / ls - 1e-9) * ls
                if m < hi - 1e-12 * max(abs(hi), 1):
                    text = fit(label(m, step) + "─", width)
                    kind = "lab"
                elif mag is not None and mag[1]:
                    text, kind = fit(mag[1] + " ", width), "mag_" + mag[0]
                else:
                    text, kind = " " * width, ""
                keys.append((kind, text, mag[0] if mag is not None else None))

        def build(y: int) -> Strip:
            kind, text, side = keys[y]
            st = styles.get(kind or "blank", styles["blank"])
            if side is None:
                return Strip([Segment(text, st)], width)
            bar = styles.get("bar_" + side, st)
            return Strip([Segment(text[:-1], st), Segment(MAGNET_BAR, bar)], width)

        return self.set_lines(keys, build)


def time_label(ts: float, period: int) -> str:
    """``HH:MM`` (UTC); on hourly and 4-hour columns a midnight reads as the date (``17 Dec``), so a long
    window shows where each day starts without the ambiguous ``17/00:00``."""
    t = time.gmtime(ts)
    if period >= 3600 and t.tm_hour == 0 and t.tm_min == 0:
        return time.strftime("%d %b", t)
    return time.strftime("%H:%M", t)


LABEL_EVERY = {60: 15, 300: 12, 900: 16, 3600: 12, 14400: 12}  # columns between time labels


class TimeAxis(CachedLines):
    DEFAULT_CSS = "TimeAxis { height: 1; width: 1fr; }"

    def draw(self, frame: Frame, cursor_x: int | None, offset: int, styles: dict[str, Style]) -> int:
        width = max(self.size.width, 1)
        g = frame.snap.grid
        memo = (width, frame.width, g.col0 + frame.body_c0, g.period, cursor_x, offset, id(styles))
        if memo == getattr(self, "_memo", None):
            return 0
        self._memo = memo
        every = LABEL_EVERY.get(g.period, 12)
        cells = [" "] * width
        for x in range(0, frame.width):
            col = g.col0 + frame.body_c0 + x
            if col % every == 0 and x + 6 <= frame.width:
                text = "╵" + time_label(col * g.period, g.period)
                if all(c == " " for c in cells[x:x + len(text) + 1]):
                    cells[x:x + len(text)] = list(text)
        tail = " UTC" if offset == 0 else f" ◀{offset}"
        for i, c in enumerate(tail):
            x = frame.width + 2 + i
            if x < width:
                cells[x] = c
        cursor_text = ""
        if cursor_x is not None and 0 <= cursor_x < frame.width:
            cells[cursor_x] = "▲"
            ts = frame.col_time(frame.body_c0 + cursor_x)
            cursor_text = time.strftime("%d %b %H:%M", time.gmtime(ts)) if g.period >= 3600 \
                else time_label(ts, g.period)  # the cursor's moment in full: an hourly column needs its day
        text = "".join(cells)
        key = [(text, cursor_x)]

        def build(_: int) -> Strip:
            segs = []
            if cursor_x is not None and 0 <= cursor_x < frame.width:
                segs = [Segment(text[:cursor_x], styles["blank"]), Segment("▲", styles["hl"]),
                        Segment(text[cursor_x + 1:], styles["blank"])]
            else:
                segs = [Segment(text, styles["blank"])]
            return Strip(segs, width)

        self.cursor_text = cursor_text
        return self.set_lines(key, build)

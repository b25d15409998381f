"""The heatmap body: price rows × time columns, drawn with Textual's Line API.

Per row: palette levels (uint8) → runs of equal cells merged into one Segment with a precomputed Style,
plus sparse overlays: the price trace (``━`` at each column's last price; where it changes row the column
turns, ``┛┏`` / ``┓┗`` with ``┃`` between, so it reads as one line), real liquidations in Hybrid (``·`` ``•`` ``●`` by USD against the largest in
view, red where longs were liquidated, green for shorts), order-book walls (``▬`` in the side's colour from
the moment the wall was first seen to now, so a wall reads as a bar at its price, not a dot in the live column),
the time cursor and the highlighted level. A row's key is its level bytes plus its overlays; only rows whose key changed are repainted. The
newest column is not here — it lives in ``LiveColumn`` — so while a column fills up, this body does not
change at all; it shifts once per column period.

``naive=True`` is the benchmark baseline: one Segment per cell, every row repainted on every update.
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from .lines import CachedLines
from .palettes import Palette, compose_levels
from .viewport import Frame

TRACE = "━"
TRACE_JOIN = "┃"
# Where the price changes row the line turns: it leaves the previous row and arrives on the new one in the
# same column (a step drawn as a step). With only ``━`` per column, a move of one row left the two dashes
# touching at a corner, and a choppy trace at fine zoom read as broken dashes.
TRACE_UP = ("┛", "┏")  # (leaving the previous row, arriving on the new row) when price rises (row above)
TRACE_DOWN = ("┓", "┗")  # ... when it falls (row below)
REAL_MARKS = ("·", "•", "●")  # real liquidations: < 8 %, < 35 %, ≥ 35 % of the largest in view
REAL_STEPS = (0.08, 0.35)
WALL = "▬"
REAL = REAL_MARKS[1]
CURSOR = "┊"
HILITE = "╌"
HALF = "▀"


class HeatmapView(CachedLines):
    DEFAULT_CSS = "HeatmapView { width: 1fr; height: 1fr; }"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frame: Frame | None = None
        self.levels: np.ndarray | None = None  # (height, width) uint16 codes of the last draw
        self._pair_styles: dict[int, Style] = {}
        self._over_styles: dict[tuple, Style] = {}
        self._palette: Palette | None = None

    def draw(self, frame: Frame, palette: Palette, scale: float, cursor_x: int | None,
             highlight_y: int | None, show_real: bool, walls: list[tuple] | None = None,
             floor: float = 0.0, held: tuple[float, float] | None = None) -> int:
        """Paint ``frame``; returns the number of rows repainted. ``walls``: ``live_column.wall_bars`` (screen
        row, first x, last x, side +1 bid / -1 ask, still standing). ``held``: the resting layer's (scale,
        floor) on its own ramp, where the frame carries it (``compose_levels``)."""
        if palette is not self._palette:
            self._palette = palette
            self._pair_styles = {}
            self._over_styles = {}
            self.invalidate()
        self.frame = frame
        n = palette.n
        hs, hf = held or (0.0, 0.0)  # (rows_total, width); without the layer, the ramp's levels alone
        lv = compose_levels(frame.flow_body(), frame.held_body, scale, floor, hs, hf, n, palette.held_n)
        h, w, sub = frame.height, frame.width, frame.sub
        if sub == 2:
            codes = lv[0::2].astype(np.uint16) * 64 + lv[1::2].astype(np.uint16)
        else:
            codes = lv.astype(np.uint16)
        self.levels = codes
        tr = frame.trace_rows // sub
        overlays: list[dict[int, tuple[str, Style]]] = [dict() for _ in range(h)]
        for y, x0, x1, side, active in walls or ():
            if 0 <= y < h:
                color = palette.wall_bid if side > 0 else palette.wall_ask
                ov = overlays[y]
                for x in range(max(x0, 0), min(x1 + 1, w)):
                    ov[x] = (WALL, self._over(codes[y, x], color, sub, bold=active))
        if show_real and frame.real_body is not None:
            self._real_marks(frame, codes, overlays, palette)
        hl_style = None
        for y in range(h):
            if highlight_y == y:
                hl_style = True
            if cursor_x is not None and 0 <= cursor_x < w:
                overlays[y].setdefault(cursor_x, (CURSOR, self._over(codes[y, cursor_x], palette.cursor, sub)))
        self._trace(tr, h, codes, overlays, palette, sub)
        if hl_style and highlight_y is not None and 0 <= highlight_y < h:
            ov = overlays[highlight_y]
            for x in range(0, w, 2):
                ov.setdefault(x, (HILITE, self._over(codes[highlight_y, x], palette.highlight, sub, bold=True)))
        # ``sub`` is part of the key: the same codes mean different cells in hires (top*64+bottom).
        keys = [(sub, codes[y].tobytes(), tuple(sorted((x, c, st) for x, (c, st) in overlays[y].items())))
                for y in range(h)]
        naive = self.naive

        def build(y: int) -> Strip:
            return self._row_strip(codes[y], overlays[y], palette, sub, naive)

        return self.set_lines(keys, build)

    def _trace(self, tr: np.ndarray, h: int, codes: np.ndarray, overlays: list, palette: Palette,
               sub: int) -> None:
        """The price trace, one unbroken line: ``━`` on a column's row where price stayed on the previous
        traded column's row; where it moved, the column turns — a corner on the previous row, ``┃`` on the rows
        between, a corner on the new row (``┛┏`` up, ``┓┗`` down) — as a step chart draws it."""
        prev = -1
        for x in np.flatnonzero(tr >= 0).tolist():
            y = int(tr[x])
            if not 0 <= y < h:
                prev = -1
                continue
            if prev < 0 or y == prev:
                overlays[y][x] = (TRACE, self._over(codes[y, x], palette.trace, sub, bold=True))
            else:
                leave, arrive = TRACE_UP if y < prev else TRACE_DOWN
                lo, hi = (prev + 1, y) if y > prev else (y + 1, prev)
                for yy in range(lo, hi):
                    overlays[yy][x] = (TRACE_JOIN, self._over(codes[yy, x], palette.trace, sub, bold=True))
                overlays[prev][x] = (leave, self._over(codes[prev, x], palette.trace, sub, bold=True))
                overlays[y][x] = (arrive, self._over(codes[y, x], palette.trace, sub, bold=True))
            prev = y

    def _real_marks(self, frame: Frame, codes: np.ndarray, overlays: list, palette: Palette) -> None:
        """Hybrid's real liquidations: one mark per cell, its size by USD against the largest in view, its
        colour by the side that was liquidated (the larger part of the cell's USD)."""
        sub = frame.sub
        rb = frame.real_body
        rl = frame.real_long_body if frame.real_long_body is not None else rb
        if sub == 2:
            rb = rb[0::2] + rb[1::2]
            rl = rl[0::2] + rl[1::2]
        ys, xs = np.nonzero(rb > 0)
        if not len(ys):
            return
        usd = rb[ys, xs]
        share = usd / float(usd.max())
        size = np.searchsorted(np.asarray(REAL_STEPS), share, side="right")
        longish = rl[ys, xs] * 2 >= usd
        for y, x, k, lg in zip(ys.tolist(), xs.tolist(), size.tolist(), longish.tolist()):
            overlays[y][x] = (REAL_MARKS[k], self._over(codes[y, x], palette.long if lg else palette.short, sub,
                                                        bold=k > 0))

    def _style(self, code: int, palette: Palette, sub: int) -> Style:
        if sub == 1:
            return palette.levels[code]
        st = self._pair_styles.get(code)
        if st is None:
            top, bot = divmod(int(code), 64)
            st = self._pair_styles[code] = Style(color=palette.colors[top], bgcolor=palette.colors[bot])
        return st

    def _over(self, code, fg, sub: int, bold: bool = False) -> Style:
        """Overlay glyph style on a cell's background; cached (Style construction is the hot spot)."""
        lvl = int(code) if sub == 1 else max(divmod(int(code), 64))
        key = (lvl, fg, bold)
        st = self._over_styles.get(key)
        if st is None:
            bg = self._palette.colors[lvl]
            if fg == bg:  # a glyph the colour of its cell (e.g. a black trace on a 16-colour black top level)
                fg = self._palette.colors[0]
            st = self._over_styles[key] = Style(bgcolor=bg, color=fg, bold=bold)
        return st

    def _row_strip(self, row: np.ndarray, overlays: dict, palette: Palette, sub: int, naive: bool) -> Strip:
        w = len(row)
        ch = " " if sub == 1 else HALF
        segs: list[Segment] = []
        if naive:
            for x in range(w):
                if x in overlays:
                    c, st = overlays[x]
                    segs.append(Segment(c, st))
                else:
                    segs.append(Segment(ch, self._style(row[x], palette, sub)))
            return Strip(segs, w)
        if w == 0:
            return Strip([], 0)
        cuts = set((np.flatnonzero(row[1:] != row[:-1]) + 1).tolist())
        for x in overlays:
            cuts.add(x)
            cuts.add(x + 1)
        cuts.add(0)
        bounds = sorted(c for c in cuts if 0 <= c < w) + [w]
        for a, b in zip(bounds, bounds[1:]):
            if a in overlays:
                c, st = overlays[a]
                segs.append(Segment(c, st))
                if b > a + 1:
                    segs.append(Segment(ch * (b - a - 1), self._style(row[a + 1], palette, sub)))
            else:
                segs.append(Segment(ch * (b - a), self._style(row[a], palette, sub)))
        return Strip(segs, w)

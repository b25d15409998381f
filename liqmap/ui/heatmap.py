"""The heatmap body: price rows × time columns, drawn with Textual's Line API.

Per row: palette levels (uint8) → runs of equal cells merged into one Segment with a precomputed Style,
plus sparse overlays (the price trace, real-liquidation dots in Hybrid, the time cursor, the highlighted
level). A row's key is its level bytes plus its overlays; only rows whose key changed are repainted. The
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
from .palettes import Palette, level_of
from .viewport import Frame

TRACE = "━"
REAL = "•"
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
             highlight_y: int | None, show_real: bool) -> int:
        """Paint ``frame``; returns the number of rows repainted."""
        if palette is not self._palette:
            self._palette = palette
            self._pair_styles = {}
            self._over_styles = {}
            self.invalidate()
        self.frame = frame
        n = palette.n
        lv = level_of(frame.body, scale, n)  # (rows_total, width)
        h, w, sub = frame.height, frame.width, frame.sub
        if sub == 2:
            codes = lv[0::2].astype(np.uint16) * 64 + lv[1::2].astype(np.uint16)
        else:
            codes = lv.astype(np.uint16)
        self.levels = codes
        tr = frame.trace_rows // sub
        real = None
        if show_real and frame.real_body is not None:
            rb = frame.real_body > 0
            real = rb[0::2] | rb[1::2] if sub == 2 else rb
        overlays: list[dict[int, tuple[str, Style]]] = [dict() for _ in range(h)]
        hl_style = None
        for y in range(h):
            ov = overlays[y]
            if highlight_y == y:
                hl_style = True
            if real is not None:
                for x in np.flatnonzero(real[y]).tolist():
                    ov[x] = (REAL, self._over(codes[y, x], palette.highlight, sub))
            if cursor_x is not None and 0 <= cursor_x < w:
                ov.setdefault(cursor_x, (CURSOR, self._over(codes[y, cursor_x], palette.cursor, sub)))
        xs = np.flatnonzero(tr >= 0)
        for x in xs.tolist():
            y = int(tr[x])
            if 0 <= y < h:
                overlays[y][x] = (TRACE, self._over(codes[y, x], palette.trace, sub, bold=True))
        if hl_style and highlight_y is not None and 0 <= highlight_y < h:
            ov = overlays[highlight_y]
            for x in range(0, w, 2):
                ov.setdefault(x, (HILITE, self._over(codes[highlight_y, x], palette.highlight, sub, bold=True)))
        # ``sub`` is part of the key: the same codes mean different cells in hires (top*64+bottom).
        keys = [(sub, codes[y].tobytes(), tuple(sorted((x, c) for x, (c, _) in overlays[y].items())))
                for y in range(h)]
        naive = self.naive

        def build(y: int) -> Strip:
            return self._row_strip(codes[y], overlays[y], palette, sub, naive)

        return self.set_lines(keys, build)

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

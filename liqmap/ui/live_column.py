"""The newest column and the right-edge strips, each its own narrow Line-API widget.

The column that is still filling changes on every engine update; keeping it in a 2-cell widget means a
tick repaints 2 cells per changed row instead of whole map rows (docs/architecture.md §8: ~1 kB/s instead of hundreds).
Its second cell marks order-book walls (bid / ask colour). ``ProfileColumn`` is Hybrid's forward profile:
where liquidations would hit if price got there, long and short as a bar per row.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from .lines import CachedLines
from .palettes import Palette, compose_levels
from .viewport import Frame

WALL = "▐"
TRACE = "━"


class LiveColumn(CachedLines):
    DEFAULT_CSS = "LiveColumn { width: 2; height: 1fr; }"

    levels: np.ndarray | None = None  # the first cell's ramp level per screen row, as last drawn

    def draw(self, frame: Frame, palette: Palette, scale: float, walls: dict[int, int], floor: float = 0.0,
             clusters: list[dict] | None = None, held: tuple[float, float] | None = None) -> int:
        """``walls``: screen row → +1 bid wall / -1 ask wall (both: the larger). The first cell is the NEXT 1H
        strip where the snapshot carries a forecast (the model's modes): the next hour's expected liquidation
        USD per row on its own scale (``forecast_level_of``, the top quarter from the weakest of ``clusters``,
        the reports' NEXT 1H clusters, up); elsewhere the newest column's heat."""
        if frame.forecast is not None:
            fc = frame.forecast
            if frame.sub == 2:
                fc = fc[0::2] + fc[1::2]
            lv = forecast_level_of(fc, palette.n, cluster_anchor(frame, fc, clusters))
        else:
            hs, hf = held or (0.0, 0.0)  # the resting layer on its own ramp, where the frame carries it
            lv = compose_levels(frame.flow_live(), frame.held_live, scale, floor, hs, hf, palette.n, palette.held_n)
            if frame.sub == 2:
                lv = np.maximum(lv[0::2], lv[1::2])
        self.levels = lv
        trow = frame.live_trace_row // frame.sub if frame.live_trace_row >= 0 else -1
        keys = [(int(lv[y]), y == trow, walls.get(y, 0)) for y in range(frame.height)]
        empty = palette.levels[0]
        if getattr(self, "_palette", None) is not palette:
            self._palette = palette
            self._trace_st = [palette.cell(i, palette.trace, True) for i in range(len(palette.levels))]
            self._wall_st = {1: Style(color=palette.wall_bid, bgcolor=palette.colors[0]),
                             -1: Style(color=palette.wall_ask, bgcolor=palette.colors[0])}
        trace_st, wall_st = self._trace_st, self._wall_st

        def build(y: int) -> Strip:
            lvl, tr, wall = keys[y]
            cell = Segment(TRACE, trace_st[lvl]) if tr else Segment(" ", palette.levels[lvl])
            w = Segment(WALL, wall_st[wall]) if wall else Segment(" ", empty)
            return Strip([cell, w], 2)

        return self.set_lines(keys, build)


FORECAST_DECADES = 3.0  # the NEXT 1H strip spans 3 decades below its magnets (as the heatmap mode's scale)


def forecast_level_of(values: np.ndarray, n: int, anchor: float | None = None,
                      decades: float = FORECAST_DECADES) -> np.ndarray:
    """Expected USD per row → ramp levels 0..n, relative to the rows in view (the strip answers "which level
    pulls price next, and how much more than the others"; the panel and the axis carry the USD).

    With ``anchor`` (the weakest on-screen NEXT 1H cluster's strongest row, :func:`cluster_anchor`) the top
    quarter of the ramp is the magnets' range: a row at least as strong as the weakest cluster the reports name
    is in it, log-spaced from the anchor (its lowest level) to the strongest row (the top); weaker rows share
    the rest of the ramp log-spaced over ``decades`` below the anchor, anything weaker is empty. Without an
    anchor, one log scale over ``decades`` below the strongest row."""
    v = np.asarray(values, dtype=np.float64)
    top = float(v.max()) if v.size else 0.0
    out = np.zeros(v.shape, dtype=np.uint8)
    if not (top > 0 and np.isfinite(top)):
        return out
    hi = -(-3 * n // 4)  # the top quarter's first level: 8 of 10
    if anchor is None or not (0 < anchor < top) or not np.isfinite(anchor):
        ref, below = top, n  # one log scale from the strongest row
    else:
        ref, below = float(anchor), hi - 1
        strong = v >= ref
        with np.errstate(divide="ignore"):
            x = np.log(v[strong] / ref) / np.log(top / ref)
        out[strong] = np.clip(hi + np.floor(x * (n - hi + 1)), hi, n).astype(np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = 1.0 + np.log10(np.where(v > 0, v / ref, 0.0)) / decades
    ok = np.isfinite(x) & (x >= -1e-9) & (v < ref if below < n else True)
    out[ok] = np.clip(np.ceil(x[ok] * below - 1e-9), 1, below).astype(np.uint8)
    return out


def cluster_anchor(frame: Frame, strip: np.ndarray, clusters: list[dict]) -> float | None:
    """The weakest on-screen NEXT 1H cluster's strongest ``strip`` row (expected USD per screen row), or None
    when no cluster with expected USD is on screen."""
    best = []
    for c in clusters or ():
        try:
            lo, hi = float(c["price_lo"]), float(c["price_hi"])
        except (KeyError, TypeError, ValueError):
            continue
        vals = [strip[y] for y in range(frame.height)
                if (lambda r: r[1] > lo and r[0] < hi)(frame.row_range(y))]
        if vals and max(vals) > 0:
            best.append(float(max(vals)))
    return min(best) if best else None


class ProfileColumn(CachedLines):
    DEFAULT_CSS = "ProfileColumn { width: 10; height: 1fr; }"

    def draw(self, frame: Frame, palette: Palette) -> int:
        width = max(self.size.width, 1)
        h = frame.height
        pl = frame.profile_long
        ps = frame.profile_short
        if pl is None or ps is None:
            pl = ps = np.zeros(frame.rows_total, np.float32)
        if frame.sub == 2:
            pl = pl[0::2] + pl[1::2]
            ps = ps[0::2] + ps[1::2]
        tot = pl + ps
        vmax = float(tot.max()) if len(tot) else 0.0
        # Bar lengths in cells; a positive level always shows at least one cell.
        scale = (width - 1) / vmax if vmax > 0 else 0.0
        nl = np.where(pl > 0, np.maximum(np.round(pl * scale), 1), 0).astype(int)
        ns = np.where(ps > 0, np.maximum(np.round(ps * scale), 1), 0).astype(int)
        keys = []
        for y in range(h):
            a = min(int(nl[y]), width - 1)
            b = min(int(ns[y]), width - 1 - a)
            keys.append((a, b))
        bg = palette.colors[0]
        if getattr(self, "_palette", None) is not palette:
            self._palette = palette
            self._st = (Style(color=palette.long, bgcolor=bg), Style(color=palette.short, bgcolor=bg),
                        Style(color=palette.cursor, bgcolor=bg, dim=True))
        long_st, short_st, edge_st = self._st
        empty = palette.levels[0]

        def build(y: int) -> Strip:
            a, b = keys[y]
            segs = [Segment("│", edge_st)]
            if a:
                segs.append(Segment("█" * a, long_st))
            if b:
                segs.append(Segment("█" * b, short_st))
            rest = width - 1 - a - b
            if rest > 0:
                segs.append(Segment(" " * rest, empty))
            return Strip(segs, width)

        return self.set_lines(keys, build)


def wall_rows(frame: Frame, walls: list[dict]) -> dict[int, int]:
    """Screen row → side (+1 bid / -1 ask) of the largest active wall on that row."""
    best: dict[int, tuple[float, int]] = {}
    for w in walls or ():
        try:
            price = float(w.get("price"))
            usd = float(w.get("usd", 0) or 0)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(price) or str(w.get("status", "active")) not in ("active", "holding", ""):
            continue
        y = frame.row_of_price(price)
        if y is None:
            continue
        side = side_sign(w.get("side"))
        if y not in best or usd > best[y][0]:
            best[y] = (usd, side)
    return {y: s for y, (_, s) in best.items() if s}


def wall_bars(frame: Frame, walls: list[dict]) -> list[tuple[int, int, int, int, bool]]:
    """Walls as bars on the body: (screen row, first x, last x, side +1 bid / -1 ask, still standing) from
    the column it was first seen to the column it ended (or the right edge while it stands). Walls that
    began before the window start at its left edge; a wall whose life is all in the live column has no bar
    (the live column marks it). The largest wall per row wins its row."""
    best: dict[int, tuple[float, tuple]] = {}
    width = frame.width
    for w in walls or ():
        try:
            price = float(w.get("price"))
            usd = float(w.get("usd", 0) or 0)
            first = float(w.get("first_seen"))
        except (TypeError, ValueError):
            continue
        if not (math.isfinite(price) and math.isfinite(first)):
            continue
        side = side_sign(w.get("side"))
        y = frame.row_of_price(price)
        if not side or y is None:
            continue
        status = str(w.get("status", "active"))
        active = status in ("active", "holding", "")
        end = None if active else w.get("ended")
        x0 = _x_clamped(frame, first)
        x1 = width - 1 if end is None else _x_clamped(frame, float(end))
        if x0 is None or x1 is None or x0 > x1 or x1 < 0 or x0 >= width:
            continue
        if y not in best or usd > best[y][0]:
            best[y] = (usd, (y, max(x0, 0), min(x1, width - 1), side, active))
    return [bar for _, bar in best.values()]


def _x_clamped(frame: Frame, ts: float) -> int | None:
    """Body column of ``ts``: −1 before the body's first column, ``width`` after its last."""
    if not math.isfinite(ts):
        return None
    g = frame.snap.grid
    x = int(ts // g.period) - g.col0 - frame.body_c0
    return min(max(x, -1), frame.width)


def side_sign(side) -> int:
    """+1 for bid/buy/long-ish sides, -1 for ask/sell/short; accepts ints or names."""
    if isinstance(side, (int, float)):
        return 1 if side > 0 else -1 if side < 0 else 0
    s = str(side).lower()
    if s in ("bid", "bids", "buy", "long", "b"):
        return 1
    if s in ("ask", "asks", "sell", "short", "a", "s"):
        return -1
    return 0

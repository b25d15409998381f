"""Where a snapshot lands on the screen: zoom, pan, the time cursor, and the mapping of grid cells to cells.

``Viewport`` is the user's navigation state (keys change it); ``Frame`` is one snapshot placed in one
widget size: for every screen row the price range it covers, for every screen column the grid column it
shows. The heatmap, the axes and the live column all draw from the same ``Frame``, so they can never
disagree about which price a row is. Aggregating ``zoom`` buckets into one row is display work on an
already computed grid; no market data is derived here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.snapshot import Snapshot

ZOOMS = (1, 2, 4, 8, 16)  # price buckets per screen row (per half-row in hires); the engine builds every
# background view with the screen's rows, so the widest zoom is kept moderate


FIT_OUT = 0.9  # fit: zoom out as soon as the path reaches past 90 % of the half-screen from the centre ...
FIT_IN = 0.6  # ... and back in only when, one zoom in, it would stay within 60 % (no flapping at the edge)
FIT_SHIFT = 0.55  # the centre may sit this share of a half-screen off the last price (the sticky centre
# re-centres past 0.6, and the engine's grid covers 0.8 around the last price)


def _path(snap: Snapshot, width: int) -> tuple[float, float, float] | None:
    """(lowest, highest traded price of the body's ``width`` newest columns and the live one, last price)."""
    g = snap.grid
    tr = np.asarray(g.trace[-(width + 1):], dtype=np.float64)
    tr = tr[np.isfinite(tr)]
    last = snap.last_price if snap.last_price and math.isfinite(snap.last_price) else center_price(snap)
    if not len(tr) or not g.step > 0:
        return None
    return min(float(tr.min()), last), max(float(tr.max()), last), last


def _fit_centre(lo: float, hi: float, last: float, span: float) -> float:
    """The middle of the path, moved toward the last price so it stays within ``FIT_SHIFT`` half-screens."""
    return min(max((lo + hi) / 2.0, last - FIT_SHIFT * span), last + FIT_SHIFT * span)


def fit_centre(snap: Snapshot, height: int, width: int, zoom: int, sub: int = 1) -> float | None:
    """Where to centre the screen at ``zoom`` so the window's price path fits (``fit_zoom``)."""
    p = _path(snap, width)
    if p is None or height <= 0:
        return None
    return _fit_centre(*p, zoom * snap.grid.step * height * sub / 2.0)


def fit_zoom(snap: Snapshot, height: int, width: int, current: int, sub: int = 1) -> int:
    """The zoom at which the price path of the visible window fits the screen.

    A trader's first look at the map should show where price has been over the whole window — the levels it
    bounced off and drifted to — not the last hour's ±1 % while the rest of the path runs off the top or
    bottom (the demo's BTC crossed 63.5k–70.3k in the default 2-hour window; zoom 1 showed 68.6k–70.0k). The
    path is the traded prices of the body's ``width`` newest columns and the live one; the screen is centred on
    its middle, kept near the last price (``fit_centre``). Zooming out happens at once; zooming in only with
    room to spare, so a price wobbling at the edge never flips the zoom."""
    p = _path(snap, width)
    if p is None or height <= 0:
        return current
    lo, hi, last = p
    half_rows = height * sub / 2.0

    def room(z: int) -> float:  # the share of the half-screen the path takes at zoom z, fitted centre
        span = z * snap.grid.step * half_rows
        c = _fit_centre(lo, hi, last, span)
        return max(hi - c, c - lo) / span

    fits = [z for z in ZOOMS if room(z) <= FIT_OUT]
    want = fits[0] if fits else ZOOMS[-1]
    if want > current:
        return want
    if want < current:
        smaller = [z for z in ZOOMS if z < current and room(z) <= FIT_IN]
        return max(smaller) if smaller else current
    return current


@dataclass
class Viewport:
    zoom: int = 1
    fit: bool = False  # the zoom follows the price path (``fit_zoom``); a manual zoom turns it off
    center: float | None = None  # None: follow the last price
    offset: int = 0  # how many columns the body is scrolled back from the live edge
    cursor_ts: float | None = None  # time cursor (a sweep / absorption moment)
    highlight: float | None = None  # a price level to mark (the selected event's level)
    hires: bool = False

    def key(self) -> tuple:
        return (self.zoom, self.fit, self.center, self.offset, self.cursor_ts, self.highlight, self.hires)


def center_price(snap: Snapshot) -> float:
    """Where to centre when following the price: last price, else the last traded column, else the grid."""
    g = snap.grid
    if snap.last_price and math.isfinite(snap.last_price):
        return float(snap.last_price)
    tr = g.trace[np.isfinite(g.trace)] if len(g.trace) else g.trace
    if len(tr):
        return float(tr[-1])
    return (g.row0 + g.values.shape[0] / 2) * g.step


@dataclass
class Frame:
    """One snapshot placed on a body of ``height`` rows × ``width`` columns (+ the live column)."""

    snap: Snapshot
    height: int
    width: int
    sub: int  # grid sub-rows per screen row (2 in hires)
    zoom: int
    bottom: int  # bucket index of the lowest sub-row's first bucket
    body_c0: int  # grid column shown at body x = 0 (may be negative: empty)
    live_c: int  # grid column shown in the live column
    center: float
    body: np.ndarray = field(repr=False)  # (height*sub, width) float32, top sub-row first
    live: np.ndarray = field(repr=False)  # (height*sub,)
    real_body: np.ndarray | None = field(default=None, repr=False)
    real_long_body: np.ndarray | None = field(default=None, repr=False)  # the long side's part of real_body
    trace_rows: np.ndarray = field(default=None, repr=False)  # (width,) sub-row of the trace, -1 none
    live_trace_row: int = -1
    profile_long: np.ndarray | None = field(default=None, repr=False)  # (height*sub,)
    profile_short: np.ndarray | None = field(default=None, repr=False)
    forecast: np.ndarray | None = field(default=None, repr=False)  # (height*sub,) next-hour expected USD
    # the resting layer's part of ``body`` / ``live`` (``MapGrid.resting``), drawn on a ramp of its own
    held_body: np.ndarray | None = field(default=None, repr=False)
    held_live: np.ndarray | None = field(default=None, repr=False)
    _flow: tuple | None = field(default=None, repr=False)  # (flow body, flow live), made once per frame

    def flow_body(self) -> np.ndarray:
        """``body`` without the resting layer: what the flow's ramp draws (the scale and the cells both read it)."""
        return self._flows()[0]

    def flow_live(self) -> np.ndarray:
        return self._flows()[1]

    def _flows(self) -> tuple[np.ndarray, np.ndarray]:
        if self._flow is None:
            self._flow = (self.body if self.held_body is None else np.maximum(self.body - self.held_body, 0.0),
                          self.live if self.held_live is None else np.maximum(self.live - self.held_live, 0.0))
        return self._flow

    @property
    def step(self) -> float:
        return self.snap.grid.step

    @property
    def rows_total(self) -> int:
        return self.height * self.sub

    def subrow_of_price(self, price: float) -> int | None:
        """Top-first sub-row that holds ``price``, None when off screen."""
        b = math.floor(price / self.step + 1e-9)
        s = (b - self.bottom) // self.zoom
        if 0 <= s < self.rows_total:
            return self.rows_total - 1 - s
        return None

    def row_of_price(self, price: float) -> int | None:
        s = self.subrow_of_price(price)
        return None if s is None else s // self.sub

    def row_range(self, y: int) -> tuple[float, float]:
        """The price range [lo, hi) that screen row ``y`` (0 = top) covers."""
        s_top = self.rows_total - 1 - y * self.sub  # bottom-first index of the top sub-row of y
        s_bot = s_top - self.sub + 1
        lo = (self.bottom + s_bot * self.zoom) * self.step
        hi = (self.bottom + (s_top + 1) * self.zoom) * self.step
        return lo, hi

    def col_time(self, c: int) -> float:
        g = self.snap.grid
        return float((g.col0 + c) * g.period)

    def x_of_ts(self, ts: float) -> int | None:
        g = self.snap.grid
        c = int(ts // g.period) - g.col0
        x = c - self.body_c0
        if 0 <= x < self.width:
            return x
        return None


def _rows(layer: np.ndarray | None, grid_rows: int, bottom_r: int, total: int, zoom: int) -> np.ndarray | None:
    """Rows of ``layer`` from grid row ``bottom_r`` up, ``total`` sub-rows of ``zoom`` rows each, summed;
    zero where the grid has no row. Result is top sub-row first."""
    if layer is None:
        return None
    ncols = layer.shape[1] if layer.ndim == 2 else None
    need = total * zoom
    shape = (need, ncols) if ncols is not None else (need,)
    out = np.zeros(shape, dtype=np.float32)
    lo, hi = max(bottom_r, 0), min(bottom_r + need, grid_rows)
    if hi > lo:
        out[lo - bottom_r:hi - bottom_r] = layer[lo:hi]
    if zoom > 1:
        out = out.reshape((total, zoom) + out.shape[1:]).sum(axis=1)
    return out[::-1]


def _body(layer: np.ndarray, nrows: int, bottom_r: int, total: int, zoom: int, shape, lo: int, hi: int,
          c0: int) -> np.ndarray:
    """A grid layer placed on the body like the heat (rows aggregated by zoom, grid columns [lo, hi))."""
    return _place(_rows(layer, nrows, bottom_r, total, zoom), shape, lo, hi, c0)


def _place(rows: np.ndarray, shape, lo: int, hi: int, c0: int) -> np.ndarray:
    """Rows of a layer (``_rows``) on the body: grid columns [lo, hi) at body x = column − c0."""
    out = np.zeros(shape, dtype=np.float32)
    if hi > lo and shape[1] > 0:
        out[:, lo - c0:hi - c0] = rows[:, lo:hi]
    return out


def heat_layer(g) -> np.ndarray:
    """The USD layer the heat cells show: the mode's values, except that the Synthetic Heatmap shows its
    smoothed USD (``long + short``; its ``values`` are the engine's 0–1 normalization, which would be scaled
    twice) and Hybrid shows only the forward estimate (real liquidations are marks of their own, sized by
    USD, so one big liquidation cannot darken the whole background)."""
    if g.mode == "heatmap" and g.long is not None and g.short is not None:
        return g.long + g.short
    if g.mode == "hybrid" and g.real is not None and g.real.shape == g.values.shape:
        return np.maximum(g.values - g.real, 0.0)
    return g.values


def make_frame(snap: Snapshot, vp: Viewport, height: int, width: int, live: bool = True) -> Frame:
    """Place ``snap`` on a body of ``height`` × ``width`` cells. With ``live`` the newest grid column goes
    to the separate live column; without it (the naive baseline) the body ends with the newest column."""
    g = snap.grid
    sub = 2 if vp.hires else 1
    total = max(height, 1) * sub
    zoom = max(int(vp.zoom), 1)
    center = vp.center if vp.center is not None else center_price(snap)
    cidx = math.floor(center / g.step + 1e-9)
    bottom = cidx - (total // 2) * zoom
    bottom_r = bottom - g.row0
    nrows, ncols = g.values.shape
    live_c = ncols - 1
    end = (ncols if not live else ncols - 1) - max(vp.offset, 0)  # body shows grid columns [end-width, end)
    c0 = end - width
    rows = _rows(heat_layer(g), nrows, bottom_r, total, zoom)  # (total, ncols)
    body = np.zeros((total, max(width, 0)), dtype=np.float32)
    lo, hi = max(c0, 0), min(end, ncols)
    if hi > lo and width > 0:
        body[:, lo - c0:hi - c0] = rows[:, lo:hi]
    live_vals = rows[:, live_c] if ncols else np.zeros(total, np.float32)
    real_body = real_long_body = None
    if g.real is not None and g.real.shape == g.values.shape:
        real_body = _body(g.real, nrows, bottom_r, total, zoom, body.shape, lo, hi, c0)
        if g.real_long is not None and g.real_long.shape == g.values.shape:
            real_long_body = _body(g.real_long, nrows, bottom_r, total, zoom, body.shape, lo, hi, c0)
    held_body = held_live = None
    if g.resting is not None and g.resting.shape == g.values.shape:
        hr = _rows(g.resting, nrows, bottom_r, total, zoom)
        held_body = _place(hr, body.shape, lo, hi, c0)
        held_live = hr[:, live_c] if ncols else np.zeros(total, np.float32)
    # The trace: the sub-row holding each column's price.
    trace_rows = np.full(max(width, 0), -1, dtype=np.int32)
    if width > 0 and hi > lo:
        tr = np.asarray(g.trace[lo:hi], dtype=np.float64)
        ok = np.isfinite(tr) & (tr > 0)
        b = np.floor(np.where(ok, tr, 0.0) / g.step + 1e-9).astype(np.int64)
        s = (b - bottom) // zoom
        ok &= (s >= 0) & (s < total)
        trace_rows[lo - c0:hi - c0] = np.where(ok, total - 1 - s, -1)
    live_trace_row = -1
    if ncols:
        lp = snap.last_price if snap.last_price else (g.trace[live_c] if len(g.trace) else float("nan"))
        if lp is not None and math.isfinite(lp) and lp > 0:
            s = (math.floor(lp / g.step + 1e-9) - bottom) // zoom
            if 0 <= s < total:
                live_trace_row = total - 1 - s
    frame = Frame(snap=snap, height=height, width=width, sub=sub, zoom=zoom, bottom=bottom, body_c0=c0,
                  live_c=live_c, center=center, body=body, live=live_vals, real_body=real_body,
                  real_long_body=real_long_body, held_body=held_body, held_live=held_live,
                  trace_rows=trace_rows, live_trace_row=live_trace_row)
    if g.profile_long is not None or g.profile_short is not None:
        pl = g.profile_long if g.profile_long is not None else np.zeros(nrows, np.float32)
        ps = g.profile_short if g.profile_short is not None else np.zeros(nrows, np.float32)
        frame.profile_long = _rows(np.asarray(pl, np.float32), nrows, bottom_r, total, zoom)
        frame.profile_short = _rows(np.asarray(ps, np.float32), nrows, bottom_r, total, zoom)
    if g.forecast is not None:
        frame.forecast = _rows(np.asarray(g.forecast, np.float32), nrows, bottom_r, total, zoom)
    return frame

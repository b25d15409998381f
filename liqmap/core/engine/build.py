"""Building one view's snapshot: its window, its grid (through the mode registry), its reports (restated for a
venue filter), incremental when only time moved forward."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .. import buckets, codec
from ..events import VENUE_ID
from ..grids.modes import drawn_layers, model_forecast, model_layers, report_levels, resting_plane
from ..grids.window import Window, view_window
from ..modes import GridInputs
from ..modes import spec as mode_spec
from ..reports.records import restate
from ..snapshot import MapGrid, Snapshot
from ..view import View
from .state import AssetState, Built, PackedSnapshot

# A view with no new data is still re-published this often (decay, health, the clock moves on).
IDLE_EVERY = 10.0


class BuildMixin:
    """Building views (part of ``Engine``)."""

    def _view_params(self, view: View):
        """The grid parameters for ``view``: the Synthetic Heatmap's smoothing is ``heatmap_sigma_buckets`` screen
        rows (× the view's zoom in buckets): at the fitted zoom of 8 a 1.5-bucket blur was a fifth of a row and
        the mode looked exactly like Synthetic."""
        if view.zoom <= 1:
            return self.params
        return replace(self.params, heatmap_sigma_buckets=self.params.heatmap_sigma_buckets * view.zoom)

    def _window(self, view: View, st: AssetState, now: float, prev: Window | None) -> Window:
        step = st.step
        if view.center is not None:
            row0 = int(buckets.index(view.center, step)) - view.rows // 2
        else:
            price = st.last_price or st.ref_price
            r = int(buckets.index(price, step))
            # Follow the price with hysteresis: recentre only when it leaves the middle half of the rows,
            # so the window (and with it the cheap incremental path) stays put while price wanders.
            if prev is not None and prev.nrows == view.rows and prev.step == step and \
                    prev.row0 + view.rows // 4 <= r < prev.row0 + view.rows - view.rows // 4:
                row0 = prev.row0
            else:
                row0 = r - view.rows // 2
        return view_window(view, now, step, row0)

    def build(self, view: View, now: float, force: bool = False) -> Snapshot | None:
        """(Re)build one view if its data or window changed; publish and return the new snapshot.

        Incremental when the rows are unchanged and time only moved forward: the model's closed columns
        are kept (shifted when the window slides) and only the open column onwards is re-read; the real
        liquidations and the trace are re-binned from the compact tapes (hundreds of rows, not rings).
        Anything else (new view, recentred rows, new step) is a full rebuild.
        """
        st = self.state(view.asset)
        with st.lock:
            if st.step is None:
                self._ensure_step(st, None)
            built = self._built.setdefault(view.key, Built())
            win = self._window(view, st, now, built.win)
            # Nothing new to draw: same window, same rows, and (for the view on screen) the same reports —
            # a wall pulled from a book with no trade since must still reach the screen at once.
            if (not force and built.win == win and built.data_version == st.data_version
                    and now - built.built_at < IDLE_EVERY and view.key in self._latest
                    and (built.reports is st.report_dicts or not self.is_hot(view.key))):
                self.stats["skipped"] += 1
                return None
            prev = built.win
            incremental = (prev is not None and prev.row0 == win.row0 and prev.nrows == win.nrows
                           and prev.step == win.step and prev.ncols == win.ncols and win.col0 >= prev.col0
                           and view.asset not in self._held)
            grid, syn = self._grid(view, st, win, now, built if incremental else None)
            kind = "incremental" if incremental else "full_builds"
            setattr(built, kind, getattr(built, kind) + 1)
            self.stats[kind] += 1
            built.win, built.data_version, built.built_at = win, st.data_version, now
            built.reports = st.report_dicts
            records, reports, verdict = self._view_reports(view, st, now)
            snap = Snapshot(version=next(self._versions), created=now, grid=grid, reports=reports,
                            verdict=verdict, health=self.health(), source=self.source, last_price=st.last_price,
                            records=records)
            built.version = snap.version
            hot = self.is_hot(view.key)
            if not hot and view.tf != "1m":
                built.syn = built.rest = None  # cheap to rebuild in full; not worth its memory for hundreds of views
        if hot:
            self._latest[view.key] = snap
        else:
            source = None
            if view.mode == "heatmap" and syn is not None:
                source = (*syn, self._view_params(view).heatmap_sigma_buckets)
            blob = codec.encode(snap, compressor="zlib", heatmap=self._heat, heatmap_source=source)
            self._latest[view.key] = PackedSnapshot(snap.version, blob, view.asset, view.mode, view.tf,
                                                    view.venues)
        self.version = max(self.version, snap.version)
        return snap

    def _view_reports(self, view: View, st: AssetState, now: float) -> tuple[Any, dict, str]:
        """(records, their JSON, verdict) for ``view``: the asset's all-venue reports, or for a view filtered to
        some venues those restated for them (``reports.restate``, with the model's levels for the same
        venues), once per new all-venue read and venue set. Computed here, on the worker that holds the
        asset's lock, so front ends only read snapshots. Caller holds ``st.lock``."""
        rec = st.records
        if rec is None or set(view.venues) >= set(self.market.venues):
            return rec, st.report_dicts, st.verdict
        cached = st.restated.get(view.venues)
        if cached is not None and cached[0] is rec:
            out = cached[1]
        else:
            try:
                out = restate(rec, view.venues, now=now, step=st.step, mid=st.last_price,
                              synth=report_levels(st.model, view.venues) if st.model is not None else None,
                              params=self.core.reports,
                              forecast_synth=(st.model.forecast_levels(view.venues)
                                              if hasattr(st.model, "forecast_levels") else None),
                              forecast_resting=(st.model.resting_levels(view.venues)
                                                if hasattr(st.model, "resting_levels") else None))
            except Exception as e:  # never lie: no restated read means no verdict, not the all-venue one
                out = replace(rec, verdict=f"verdict unavailable for {', '.join(view.venues)}: {type(e).__name__}")
                object.__setattr__(out, "_json", st.report_dicts)
            st.restated[view.venues] = (rec, out)
        return out, out.to_dict(), out.verdict

    def _model_layers(self, view: View, st: AssetState, win: Window, built: Built,
                      prev: Built | None, venues) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(long, short, the resting layer's part of long + short or None): the model's at-risk columns."""
        if prev is not None and prev.syn is not None and prev.open_col is not None and st.model is not None:
            lo, sh = prev.syn
            rest = prev.rest if prev.rest is not None else np.zeros(lo.shape, np.float32)
            k = win.col0 - prev.win.col0
            if k:
                lo, sh, rest = _shift_left(lo, k), _shift_left(sh, k), _shift_left(rest, k)
            col_lo = max(prev.open_col, win.col0)
            j = col_lo - win.col0
            nrest = np.zeros((win.nrows, win.col1 - col_lo), np.float32)
            nlo, nsh = model_layers(st.model, view.tf, win, venues, col_lo=col_lo, rest_out=nrest)
            lo, sh = lo.astype(np.float64), sh.astype(np.float64)  # copies: never touch a cached array
            if rest is prev.rest:  # unshifted: never touch the cached array (a shift or a new zeros is a copy)
                rest = rest.copy()
            lo[:, j:], sh[:, j:], rest[:, j:] = nlo, nsh, nrest
        else:
            rest = np.zeros((win.nrows, win.ncols), np.float32)
            lo, sh = model_layers(st.model, view.tf, win, venues, rest_out=rest)
        rest = rest if (rest > 0).any() else None
        # Kept as float32 (what the grid holds anyway): half the memory over the views that keep it.
        built.syn, built.open_col = (lo.astype(np.float32), sh.astype(np.float32)), win.col1 - 1
        built.rest = rest
        return lo, sh, rest

    def _grid(self, view: View, st: AssetState, win: Window, now: float,
              prev: Built | None) -> tuple[MapGrid, tuple[np.ndarray, np.ndarray] | None]:
        built = self._built[view.key]
        vids = None
        if set(view.venues) != set(self.market.venues):
            vids = np.array([VENUE_ID[v] for v in view.venues], dtype=np.uint8)
        mode = mode_spec(view.mode)  # what the mode reads, and its builder (``liqmap.core.modes``)
        venues = view.venues
        model_venues = None if vids is None else venues
        inp = GridInputs(view.asset, view.tf, win, st.trades[view.tf].select(vids), now, self._view_params(view), venues)
        if mode.liqs:
            inp = replace(inp, liqs=st.liqs[view.tf].select(vids))
        held = None
        if mode.model:
            alo, ash, rest = self._model_layers(view, st, win, built, prev, model_venues)
            # what the map draws: at risk × the chance of reach from each column's price (grids/reach.py), on
            # every build — the cache above keeps the at-risk columns, the weighting moves with the volatility
            lo, sh = drawn_layers(st.model, win, alo, ash, inp.trades, inp.params)
            held = resting_plane(view.mode, rest, alo, ash, lo, sh, inp.params)
            inp = replace(inp, lo=lo, sh=sh)
        if mode.levels:
            # all venues: the levels read at the last ingest (the model has not changed since)
            inp = replace(inp, levels=st.synth if model_venues is None and st.synth is not None
                          else report_levels(st.model, model_venues))
        if mode.exact and self.positions is not None:
            view_exact = st.exact.view if st.exact is not None else None
            inp = replace(inp, exact_segments=self.positions.segments(view.asset),
                          exact_levels=view_exact.levels if view_exact is not None else None)
        grid = mode.build(inp)
        if held is not None:  # the resting layer's part of the heat, drawn in a hue of its own
            grid = replace(grid, resting=held)
        if mode.model and st.model is not None:
            # the right-edge strip's NEXT 1H: expected USD per row, from the price the reports' clusters use
            fc = model_forecast(st.model, win, model_venues, price=st.last_price)
            if fc is not None:
                grid = replace(grid, forecast=fc)
        return grid, ((inp.lo, inp.sh) if mode.model else None)


def _shift_left(a: np.ndarray, k: int) -> np.ndarray:
    """A copy of ``a`` moved left by ``k`` columns; the new columns are empty."""
    out = np.zeros_like(a)
    if k < a.shape[1]:
        out[:, : a.shape[1] - k] = a[:, k:]
    return out

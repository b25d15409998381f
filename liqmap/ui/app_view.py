"""The view on screen and drawing it (part of ``LiqmapApp``): the ``View`` asked of the source, the UI tick
(fetch the newest snapshot, draw only when something changed), the zoom fitted to the price path, the sticky
centre, the loading state, and a change of view (mode, asset, timeframe, zoom, pan: ``_changed``)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from rich.text import Text
from textual.widgets import Static

from ..core.modes import MODE_LABEL
from ..core.modes import spec as mode_spec
from ..core.snapshot import Snapshot
from .axes import PriceAxis, TimeAxis, magnet_marks
from .heatmap import HeatmapView
from .lines import CachedLines
from .live_column import LiveColumn, ProfileColumn, wall_bars, wall_rows
from .palettes import Scale, typical_cell, view_top
from .reports_table import ReportsTable, summary_line
from .source import SourceStatus, View
from .startup_trace import trace
from .status import StatusBar
from .viewport import Viewport, center_price, fit_centre, fit_zoom, make_frame


def _no_data(snap: Snapshot) -> bool:
    """Nothing observed yet for this view: no price, no trace, no value in the grid."""
    g = snap.grid
    return (snap.last_price is None and not np.isfinite(g.trace).any()
            and not (g.values.size and np.any(g.values)))


class ViewMixin:
    """The view and its drawing (part of ``LiqmapApp``)."""

    def current_view(self) -> View:
        hm = self._q(HeatmapView)
        sub = 2 if self.vp.hires else 1
        height = hm.size.height or max(self.size.height - 5, 1)  # before the first layout: estimate
        # Following the price, the screen centre is sticky (see _draw) and may sit up to 30% of a screen
        # away from the engine's centre (the last price): ask for 1.6× the rows so the screen stays covered.
        rows = height * sub * self.vp.zoom
        if self.vp.center is None:
            rows = -(-rows * 8 // 5)
        venues = (self.venue_filter,) if self.venue_filter else None
        return View(self.asset, self.mode, self.timeframe, venues, rows, self.vp.center,
                    int(self.cfg["engine"]["columns"]), self.vp.zoom)

    # Every panel shows one view's data or says it is loading, never another view's (issue 20): the map,
    # both axes, the live column and the profile are tagged with ``_map_tag``, the reports panel with
    # ``_reports_tag``, and the status bar's verdict comes only from a snapshot of the current map tag.
    def _venues(self) -> tuple[str, ...]:
        return (self.venue_filter,) if self.venue_filter else tuple(self.venue_list)

    def _map_tag(self) -> tuple:
        """What the map shows: a snapshot drawn under one tag is never kept on screen under another (a pan
        or a resize keeps the tag: the same data, placed elsewhere)."""
        return (self.asset, self.mode, self.timeframe, self._venues(), self.vp.zoom, self.vp.hires)

    def _reports_tag(self) -> tuple:
        """What the reports panel speaks for: the asset's reports, restated for the venue filter (the
        same for every mode and timeframe)."""
        return (self.asset, self._venues())

    def _snap_fits(self, snap: Snapshot | None, view: View) -> bool:
        """The snapshot's own grid says it is this view's asset, mode, timeframe and venues."""
        if snap is None:
            return False
        g = snap.grid
        if g.asset != view.asset or g.mode != view.mode or g.timeframe != view.timeframe:
            return False
        want = tuple(view.venues) if view.venues else tuple(self.venue_list)
        if g.venues and set(g.venues) != set(want):
            return False
        return True

    def _tick(self) -> None:
        """The UI tick: fetch the newest snapshot of the view; draw only if something changed."""
        if not self._ui_ready():
            return
        self.ticks += 1
        if getattr(self.screen, "covers_map", False):
            # a full-screen view over the map (the screener): drawing the hidden map would cost its own render
            # and, as Textual repaints the top screen wherever a screen below changed, a repaint of that view
            return
        if self._main.has_class("toosmall") or self.source is None:
            if self.source is None:
                self._show_empty(self._source_error and f"data source failed: {self._source_error}"
                                 or "connecting… (starting the data source)")
            return
        view = self.current_view()
        if view != self._view:
            self._view = view
            self.source.set_view(view)
        snap = self.source.latest(view)
        if snap is not None and self._snap is None:
            trace("first-snapshot")
        tag = self._map_tag()
        if snap is None or not self._snap_fits(snap, view):
            # the snapshot on screen may stay while the new one is built only if it is of the same map tag
            snap = self._snap if self._snap_tag == tag and self._snap_fits(self._snap, view) else None
        if snap is None or _no_data(snap):
            # an engine builds views before any data (an empty grid around the asset's reference price): a
            # blank map at a made-up price would mislead; say why there is nothing instead
            self._show_empty(self._empty_reason())
            return
        hm = self._q(HeatmapView)
        if self._fit(snap, hm):
            return  # a new zoom is a new view: the next tick asks for it
        key = (snap.version, id(snap), self.vp.key(), tuple(hm.size), self.palette.system, id(self.palette))
        if key == self._drawn_key:
            return
        self._draw(snap, tag)
        self._drawn_key = key

    def _fit(self, snap: Snapshot, hm) -> bool:
        """Zoom to fit the window's price path (``fit_zoom``) while following the live edge; True if it
        changed the zoom. Only a snapshot newer than the one behind the last change decides: the view of the
        new zoom may have a snapshot cached from before (a narrower path), and deciding from it flipped the
        zoom back and forth."""
        vp = self.vp
        if not vp.fit or vp.center is not None or vp.offset or snap.version <= self._fit_version:
            return False
        h, w = hm.size.height, hm.size.width
        if h <= 0 or w <= 0:
            return False
        z = fit_zoom(snap, h, w, vp.zoom, 2 if vp.hires else 1)
        if z == vp.zoom:
            return False
        vp.zoom = z
        self._fit_version = snap.version
        self._auto_center = fit_centre(snap, h, w, z, 2 if vp.hires else 1)
        self._changed()
        return True

    def _redraw(self) -> None:
        self._redraw_scheduled = False
        self._drawn_key = None
        for w in self._main.query(CachedLines):
            w.invalidate()
        self._tick()

    def _empty_reason(self) -> str:
        st: SourceStatus = self.source.status() if self.source is not None else SourceStatus()
        if st.state == "error":
            return f"data source error: {st.message}"
        venues = [self.venue_filter] if self.venue_filter else self.venue_list
        health = st.health or {}
        down = [v for v in venues if isinstance(health.get(v), dict)
                and str(health[v].get("state", "")).lower() in ("down", "error")]
        if health and len(down) == len(venues):
            why = next((str(health[v].get("last_error")) for v in down if health[v].get("last_error")), "")
            why = why if len(why) <= 64 else why[:63] + "…"
            why = f"\n{down[0]}: {why}" if why else ""  # e.g. no network: the DNS error says so
            return f"{', '.join(down)} down — no data for {self.asset}{why}"
        if st.state == "connecting":
            return f"connecting to {', '.join(venues)}… ({self.asset})"
        what = f"{self.asset} {MODE_LABEL.get(self.mode, self.mode)} {self.timeframe}"
        has = getattr(self.source, "has_data", None)
        if callable(has) and has(self.asset):
            return f"computing {what}…"
        msg = f"no data yet for {what}"
        if self.venue_filter:
            msg += f" on {self.venue_filter}"
        if down:
            msg += f" ({', '.join(down)} down)"
        return msg

    def _show_empty(self, reason: str) -> None:
        """The map's loading state: the message covers the map, the live column and the price axis; the
        time axis is hidden; the reports panel says it is loading unless it already shows this asset's
        reports for these venues (they do not depend on mode or timeframe)."""
        row = self._q("#maprow")
        empty = self._q("#empty", Static)
        if str(empty.content) != reason:
            empty.update(reason)
        if not row.has_class("empty"):
            row.add_class("empty")
            self._drawn_key = None
        taxis = self._q(TimeAxis)
        if taxis.visible:
            taxis.visible = False  # its labels belong to the map on screen before the key
        table = self._q(ReportsTable)
        rtag = self._reports_tag()
        if table.view != rtag:
            where = f" on {self.venue_filter}" if self.venue_filter else ""
            table.show_loading(rtag, f"loading {self.asset} reports{where}…", self._styles)
            self._q("#summary", Static).update(Text(f" loading {self.asset} reports{where}…", style="dim"))
            self._reports_obj = None
        self._refresh_status()

    def _draw(self, snap: Snapshot, tag: tuple | None = None) -> None:
        row = self._q("#maprow")
        if row.has_class("empty"):
            row.remove_class("empty")  # the map's widgets were laid out under the message all along
        prev = self._snap
        self._snap = snap
        self._snap_tag = tag if tag is not None else self._map_tag()
        hm = self._q(HeatmapView)
        h, w = hm.size.height, hm.size.width
        if h <= 0 or w <= 0:  # not laid out yet (the very first refresh): draw after it, once
            if not self._redraw_scheduled:
                self._redraw_scheduled = True
                self.call_after_refresh(self._redraw)
            return
        if prev is None or prev.grid.asset != snap.grid.asset or prev.grid.mode != snap.grid.mode \
                or prev.grid.timeframe != snap.grid.timeframe:
            self._scale = Scale()
            self._held_scale = Scale()
        frame = make_frame(snap, self._effective_vp(snap, h), h, w, live=not self.naive)
        self.frame = frame
        # the flow on the ramp, the resting layer (positions held for days) on a ramp of its own: each its scale
        flow, flow_live = frame.flow_body(), frame.flow_live()
        self._scale.update(view_top(flow, flow_live), typical_cell(flow, flow_live))
        scale, floor = self._scale.value, self._scale.floor
        held = None
        if frame.held_body is not None:
            # its top is the whole view's peak, not the newest quarter's as the flow's: the layer moves slowly and
            # a fall's older columns hold the most of it (price came to it), which on the newest quarter's scale
            # was one block of the top colour; the present near price keeps its place on the same scale
            held_top = max(float(frame.held_body.max(initial=0.0)), float(np.max(frame.held_live, initial=0.0)))
            self._held_scale.update(held_top, typical_cell(frame.held_body, frame.held_live))
            held = (self._held_scale.value, self._held_scale.floor)
        self._held_shown = held
        cursor_x = frame.x_of_ts(self.vp.cursor_ts) if self.vp.cursor_ts is not None else None
        hl_y = frame.row_of_price(self.vp.highlight) if self.vp.highlight is not None else None
        reports = snap.reports or {}
        hm.draw(frame, self.palette, scale, cursor_x, hl_y, show_real=mode_spec(self.mode).real_marks,
                walls=wall_bars(frame, reports.get("walls") or []), floor=floor, held=held)
        if not self.naive:
            self._q(LiveColumn).draw(frame, self.palette, scale, wall_rows(frame, reports.get("walls") or []), floor,
                                     clusters=(reports.get("forecast") or {}).get("clusters") or [], held=held)
        prof = self._q(ProfileColumn)
        if mode_spec(self.mode).profile_strip:
            prof.draw(frame, self.palette)
        clusters = (reports.get("forecast") or {}).get("clusters") or []
        self._q(PriceAxis).draw(frame, snap.last_price or center_price(snap), self.vp.highlight,
                                self._styles, magnet_marks(frame, clusters))
        taxis = self._q(TimeAxis)
        taxis.draw(frame, cursor_x, self.vp.offset, self._styles)
        if not taxis.visible:
            taxis.visible = True
        table = self._q(ReportsTable)
        rtag = self._reports_tag()
        if reports is not self._reports_obj or table.view != rtag:
            self._reports_obj = reports
            table.update_reports(reports, snap.grid.step, self._styles, view=rtag)
            self._q("#summary", Static).update(summary_line(reports, snap.grid.step, snap.last_price))
        self.draws += 1
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
            trace("first-frame")
            if self._first_frame_cb is not None:
                self._first_frame_cb()
        self._refresh_status()

    def _effective_vp(self, snap: Snapshot, height: int) -> Viewport:
        """The viewport with a sticky centre when following the price: it moves only when the last price
        leaves the middle 60% of the screen, so a price wobbling across a bucket edge does not shift (and
        repaint) the whole map."""
        if self.vp.center is not None:
            return self.vp
        lp = snap.last_price or center_price(snap)
        per_row = snap.grid.step * self.vp.zoom * (2 if self.vp.hires else 1)
        ac = self._auto_center
        if ac is None or abs(lp - ac) / per_row > height * 0.3:
            ac = lp
            if self.vp.fit:  # the path's middle, near the last price
                ac = fit_centre(snap, height, self._q(HeatmapView).size.width, self.vp.zoom,
                                2 if self.vp.hires else 1) or lp
        self._auto_center = ac
        return replace(self.vp, center=ac)

    def _ui_ready(self) -> bool:
        """False while the app is starting or shutting down (timers may still fire then)."""
        return self.is_running and bool(self.screen_stack) and bool(self._main.query(StatusBar))

    def _changed(self, reset_view: bool = False) -> None:
        if reset_view:
            self.vp.center = None
            self.vp.offset = 0
            self.vp.cursor_ts = None
            self.vp.highlight = None
            self._auto_center = None
        prof = self._q("#profile")
        strip = mode_spec(self.mode).profile_strip
        if prof.has_class("shown") != strip:
            prof.set_class(strip, "shown")
            # The map's width changes with the profile strip: draw again once the layout has settled.
            self.call_after_refresh(self._redraw)
        self._drawn_key = None
        self._tick()
        self._refresh_status()

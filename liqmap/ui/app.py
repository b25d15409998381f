"""The liqmap terminal app: one heatmap, four modes, a reports panel, keyboard first, cheap over ssh.

The app owns only navigation state (``Viewport``, asset, mode, timeframe, venue filter). On a fixed tick
(``cfg["app"]["hz"]``) it asks its ``SnapshotSource`` for the newest snapshot of the current view and does
nothing when neither the snapshot version nor the view changed. Drawing goes through Line-API widgets
that repaint only changed rows; the filling column has its own 2-cell widget.

Every binding has an id; ``cfg["keys"]`` (id → key) remaps them through Textual's keymap.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from ..core.modes import MODE_LABEL, MODES, REGISTRY as MODE_REGISTRY
from ..core.modes import spec as mode_spec
from ..core.snapshot import Snapshot
from ..core.timeframes import ORDER as TIMEFRAMES
from .axes import PriceAxis, TimeAxis, magnet_marks, time_label
from .heatmap import HeatmapView
from .alerts_log import AlertsScreen
from .help import HelpScreen
from .screener import ScreenerScreen
from .screener_table import ScreenerTable
from .lines import CachedLines
from .live_column import LiveColumn, ProfileColumn, wall_bars, wall_rows
from .palettes import Palette, Scale, build_palette, detect_color_system, typical_cell, view_top
from .reports_table import ReportsTable, record_price, record_ts, summary_line
from .source import SnapshotSource, SourceStatus, View
from .status import StatusBar, legend, live_state, no_data_line, status_line, view_line
from .themes import ThemeSpec, to_textual
from .viewport import ZOOMS, Viewport, center_price, fit_centre, fit_zoom, make_frame

MIN_WIDTH, MIN_HEIGHT = 60, 16
_TRACE = os.environ.get("LIQMAPUI_STARTUP_TRACE")  # file: start-up phases, "wall cpu event" lines (benchmarks)


def trace(event: str) -> None:
    if _TRACE:  # the process's CPU seconds too: under load, wall times mostly measure the other processes
        with open(_TRACE, "a") as f:
            f.write(f"{time.time():.4f} {time.process_time():.4f} {event}\n")


COMPACT_WIDTH = 100
TOAST_SECONDS = 8  # how long an alert's toast stays (a wide screen)
OTHER_TOASTS = 2  # at most this many other assets' information toasts on screen at once
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


def _no_data(snap: Snapshot) -> bool:
    """Nothing observed yet for this view: no price, no trace, no value in the grid."""
    g = snap.grid
    return (snap.last_price is None and not np.isfinite(g.trace).any()
            and not (g.values.size and np.any(g.values)))


class AssetProvider(Provider):
    """Command palette provider: fuzzy search over every asset of the universe."""

    async def discover(self) -> Hits:
        app = self.app
        for a in app.assets:  # type: ignore[attr-defined]
            yield DiscoveryHit(a, partial(app.select_asset, a), help="show this asset")  # type: ignore

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.app
        for a in app.assets:  # type: ignore[attr-defined]
            score = matcher.match(a)
            if score > 0:
                yield Hit(score, matcher.highlight(a), partial(app.select_asset, a),  # type: ignore
                          help="show this asset")


class LiqmapApp(App):
    CSS_PATH = "liqmap.tcss"
    TITLE = "liqmap"
    COMMANDS = App.COMMANDS | {AssetProvider}
    AUTO_FOCUS = None  # arrows pan the map until the user moves into the reports panel (Enter / Tab)

    BINDINGS = [
        *(Binding(m.key, f"mode('{m.name}')", m.short, id=f"mode_{m.name}") for m in MODE_REGISTRY),
        Binding("m", "mode_cycle", "Mode", id="mode_cycle"),
        Binding("left_square_bracket", "asset(-1)", "Prev asset", key_display="[", id="asset_prev"),
        Binding("right_square_bracket", "asset(1)", "Next asset", key_display="]", id="asset_next"),
        Binding("slash", "asset_search", "Find asset", key_display="/", id="asset_search"),
        Binding("t", "timeframe(1)", "TF", id="timeframe_next"),
        Binding("T", "timeframe(-1)", "TF back", show=False, id="timeframe_prev"),
        Binding("plus,equals_sign", "zoom(-1)", "Zoom in", key_display="+", id="zoom_in"),
        Binding("minus", "zoom(1)", "Zoom out", key_display="-", id="zoom_out"),
        Binding("up", "pan(1, 0)", "Pan up", show=False, id="pan_up"),
        Binding("down", "pan(-1, 0)", "Pan down", show=False, id="pan_down"),
        Binding("left", "pan(0, 1)", "Back in time", show=False, id="pan_left"),
        Binding("right", "pan(0, -1)", "Forward in time", show=False, id="pan_right"),
        Binding("c", "recentre", "Centre", id="recentre"),
        Binding("v", "venues", "Venues", id="venue_cycle"),
        Binding("r", "reports", "Reports", id="reports_toggle"),
        Binding("enter", "focus_reports", "Events", show=False, id="reports_focus"),
        Binding("h", "hires", "Hi-res", show=False, id="hires_toggle"),
        Binding("a", "alerts", "Alerts", id="alerts_log"),
        Binding("s", "screener", "Screener", id="screener"),
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(
        self,
        cfg: dict[str, Any],
        source: SnapshotSource | None = None,
        theme_spec: ThemeSpec | None = None,
        themes: dict[str, ThemeSpec] | None = None,
        color_system: str | None = None,
        source_factory: Callable[[], SnapshotSource] | None = None,
        naive: bool = False,
        first_frame: Callable[[], None] | None = None,
        source_label: str = "LIVE",
    ) -> None:
        super().__init__()
        self.cfg = cfg
        # what the source will be (LIVE / REPLAY / DEMO), shown until it is built: a demo never reads LIVE
        self.source_label = source_label
        app_cfg = cfg["app"]
        self.assets: list[str] = list(cfg["universe"]["assets"])
        self.venue_list: list[str] = list(cfg["universe"]["venues"])
        self.asset = app_cfg["asset"].upper() if app_cfg["asset"].upper() in self.assets else self.assets[0]
        self.mode = app_cfg["mode"]
        self.timeframe = app_cfg["timeframe"]
        self.venue_filter: str | None = None
        self._fit_version = -1  # the snapshot version behind the fitted zoom's last change
        zoom = str(app_cfg.get("zoom", "fit"))
        self.vp = Viewport(hires=bool(app_cfg.get("hires", False)), fit=zoom == "fit",
                           zoom=1 if zoom == "fit" else int(zoom))
        self.hz = float(app_cfg["hz"])
        self.source = source
        self.alerts: list = []  # alerts fired this run, oldest first (the log, key a)
        self._other_toasts: list[float] = []  # when other assets' information toasts were shown (monotonic)
        self._toasts_held = 0  # other assets' alerts kept to the log since the last toast
        self._source_factory = source_factory
        self._source_error = ""
        self.naive = naive
        self._first_frame_cb = first_frame
        if theme_spec is None:
            from .themes import resolve

            theme_spec, themes = resolve(app_cfg.get("theme", "dark"))
        self.theme_spec = theme_spec
        self.themes_by_name = themes or {theme_spec.name: theme_spec}
        self.color_system = color_system or detect_color_system()
        self.palette: Palette = build_palette(theme_spec, self.color_system)
        self._styles = self._make_styles(theme_spec)
        self._scale = Scale()
        self._snap: Snapshot | None = None
        self._snap_tag: tuple | None = None  # the map tag (``_map_tag``) ``_snap`` was drawn for
        self._view: View | None = None
        self._drawn_key: tuple | None = None
        self._reports_obj: Any = None
        self.frame = None
        self.ticks = 0
        self.draws = 0
        self.first_frame_at: float | None = None
        self._redraw_scheduled = False
        self.show_reports = True
        self._reports_user_choice: bool | None = None
        self._auto_center: float | None = None

    def _q(self, selector, expect_type=None):
        """Query the main screen even while a modal (help, palette) is on top."""
        return self._main.query_one(selector, expect_type) if expect_type else self._main.query_one(selector)

    @property
    def _main(self):
        return self.screen_stack[0] if self.screen_stack else self.screen

    # ---- setup --------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="main"):
            with Vertical(id="mapcol"):
                with Horizontal(id="maprow", classes="empty"):
                    yield PriceAxis(id="price-axis")
                    yield HeatmapView(id="heatmap", naive=self.naive)
                    yield LiveColumn(id="live", naive=self.naive)
                    yield ProfileColumn(id="profile", naive=self.naive)
                    yield Static("connecting…", id="empty")
                with Horizontal(id="timerow"):
                    yield Static("", id="time-pad")
                    yield TimeAxis(id="time-axis", naive=self.naive)
                yield Static("", id="summary")  # the reports in one line where the panel does not fit
            yield ReportsTable(id="reports")
        yield Static("", id="toosmall")
        yield Footer()

    def on_mount(self) -> None:
        trace("mount")
        for spec in self.themes_by_name.values():
            self.register_theme(to_textual(spec))
        self.register_theme(to_textual(self.theme_spec))
        self.theme = self.theme_spec.textual_name
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        keymap = dict(self.cfg.get("keys") or {})
        if keymap:
            known = {b.id for b in self._all_bindings()}
            unknown = sorted(k for k in keymap if k not in known)
            if unknown:
                self.notify(f"config [keys]: unknown binding id(s): {', '.join(unknown)}", severity="warning")
            self.set_keymap(keymap)
        if self.naive:
            self._q(LiveColumn).display = False
        self._layout_for_size()
        self._q("#profile").set_class(mode_spec(self.mode).profile_strip, "shown")
        if self.source is None and self._source_factory is not None:
            self.run_worker(self._build_source, thread=True, exclusive=True, name="source")
        else:
            if hasattr(self.source, "on_update"):
                self.source.on_update = self._tick
            self._start_source()
        self.set_interval(1.0 / self.hz, self._tick, name="ui-tick")
        self.set_interval(1.0, self._refresh_status, name="status-tick")
        self.call_after_refresh(self._tick)

    @classmethod
    def _all_bindings(cls) -> list[Binding]:
        """The app's, the reports panel's, the help screen's, the alerts log's and the screener's bindings (all
        remappable by id)."""
        return [b for bs in (cls.BINDINGS, ReportsTable.BINDINGS, HelpScreen.BINDINGS, AlertsScreen.BINDINGS,
                             ScreenerScreen.BINDINGS, ScreenerTable.BINDINGS) for b in bs if isinstance(b, Binding)]

    def _build_source(self) -> None:
        """Build the data source off the UI loop (imports, demo market construction), then start it."""
        try:
            trace("source-build-start")
            src = self._source_factory()
            trace("source-built")
        except Exception as e:  # shown on screen; the app stays up so the user can read it and quit
            self._source_error = f"{type(e).__name__}: {e}"
            return
        self.call_from_thread(self._set_source, src)

    def _set_source(self, src: SnapshotSource) -> None:
        self.source = src
        if hasattr(src, "on_update"):
            src.on_update = self._tick
        self._start_source()
        self._tick()

    def _start_source(self) -> None:
        runner = getattr(self.source, "runner", None)
        venues = getattr(runner, "venues", None)
        if venues:  # the runtime's own: a replay also reads venues no longer live (BitMEX), and its all-venue
            self.venue_list = list(venues)  # snapshots name them; with the config's list none ever fitted the view
        if runner is not None and hasattr(runner, "alert_listeners"):
            runner.alert_listeners.append(self._on_alert)
        start = getattr(self.source, "start", None)
        if callable(start):
            start()

    async def on_unmount(self) -> None:
        stop = getattr(self.source, "stop", None)
        if callable(stop):
            res = stop()
            if hasattr(res, "__await__"):
                await res

    def _on_theme_changed(self, theme) -> None:
        name = getattr(theme, "name", "")
        if name.startswith("liqmap-"):
            spec = self.themes_by_name.get(name[len("liqmap-"):])
            if spec is not None and spec is not self.theme_spec:
                self.theme_spec = spec
                self.palette = build_palette(spec, self.color_system)
                self._styles = self._make_styles(spec)
                self._redraw()

    def _make_styles(self, spec: ThemeSpec) -> dict[str, Style]:
        ui, heat = spec.ui, spec.heat
        bg = heat["empty"] if self.color_system != "16" else None
        return {
            "blank": Style(color=ui["foreground"], bgcolor=ui["background"]),
            "lab": Style(color=ui["foreground"], bgcolor=ui["background"]),
            "last": Style(color=ui["background"], bgcolor=heat["trace"] if bg else "white", bold=True),
            "hl": Style(color=heat["highlight"], bgcolor=ui["background"], bold=True),
            # the NEXT 1H magnets on the price axis: longs liquidated below price in the long colour, shorts above
            "mag_long": Style(color=heat["long"], bgcolor=ui["background"]),
            "mag_short": Style(color=heat["short"], bgcolor=ui["background"]),
            "bar_long": Style(color=heat["long"], bgcolor=ui["background"], bold=True),
            "bar_short": Style(color=heat["short"], bgcolor=ui["background"], bold=True),
            "header": Style(color=ui["primary"], bgcolor=ui["background"], bold=True),
            "info": Style(color=ui["accent"], bgcolor=ui["background"]),
            "text": Style(color=ui["foreground"], bgcolor=ui["background"]),
            "rec": Style(color=ui["foreground"], bgcolor=ui["background"]),
            "empty": Style(color=ui["secondary"], bgcolor=ui["background"], dim=True),
            "selected": Style(color=ui["background"], bgcolor=ui["primary"], bold=True),
            "selected_blur": Style(color=ui["foreground"], bgcolor=ui["panel"], underline=True),
        }

    # ---- the view -----------------------------------------------------------------------------------
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
        frame = make_frame(snap, self._effective_vp(snap, h), h, w, live=not self.naive)
        self.frame = frame
        self._scale.update(view_top(frame.body, frame.live), typical_cell(frame.body, frame.live))
        scale, floor = self._scale.value, self._scale.floor
        cursor_x = frame.x_of_ts(self.vp.cursor_ts) if self.vp.cursor_ts is not None else None
        hl_y = frame.row_of_price(self.vp.highlight) if self.vp.highlight is not None else None
        reports = snap.reports or {}
        hm.draw(frame, self.palette, scale, cursor_x, hl_y, show_real=mode_spec(self.mode).real_marks,
                walls=wall_bars(frame, reports.get("walls") or []), floor=floor)
        if not self.naive:
            self._q(LiveColumn).draw(frame, self.palette, scale, wall_rows(frame, reports.get("walls") or []), floor,
                                     clusters=(reports.get("forecast") or {}).get("clusters") or [])
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

    def _refresh_status(self) -> None:
        if not self._ui_ready() or self._main.has_class("toosmall"):
            return
        snap = self._snap if (self._view is not None and self._snap_tag == self._map_tag()
                              and self._snap_fits(self._snap, self._view)) else None
        st = self.source.status() if self.source is not None else SourceStatus(label=self.source_label)
        health = (snap.health if snap is not None and snap.health else st.health) or {}
        health = {v: health.get(v, {"state": "connecting"}) for v in self.venue_list} if not health else health
        label = snap.source if snap is not None else st.label
        compact = self._main.has_class("compact")
        badge_of = getattr(self.source, "badge", None)
        badge = badge_of() if callable(badge_of) else ""
        l1 = status_line(self.asset, self.mode, self.timeframe, health, label, self.venue_filter, compact, badge)
        cursor = ""
        if self.vp.cursor_ts is not None and snap is not None:
            cursor = time_label(self.vp.cursor_ts, snap.grid.period)
        step = snap.grid.step if snap is not None else 0.0
        verdict = snap.verdict if snap is not None else ""
        if snap is None and self.source is not None and st.state == "running":
            verdict = f"loading {self.asset} {MODE_LABEL.get(self.mode, self.mode)} {self.timeframe}…"
        elif snap is not None and self.mode == "positions":  # a sample of wallets: always say how big, first
            exact = (snap.reports or {}).get("exact") or {}
            verdict = " \u00b7 ".join(x for x in (exact.get("label") or "exact: no Hyperliquid wallets polled",
                                                  verdict) if x)
        key = legend(self.palette.colors, self._scale.value if snap is not None else 0.0,
                     "½row" if self.vp.hires else "row", self._scale.floor)
        if self.mode in ("raw", "hybrid") and "binance" in self.venue_list \
                and self.venue_filter in (None, "binance") and key.plain:
            key.append("bin ≤1/s ", style="dim")  # Binance's liquidation stream is sampled: help says so
        l2 = view_line(verdict, self.vp.zoom, step, self.venue_filter, cursor, key, width=self.size.width,
                       compact=compact, fit=self.vp.fit)
        if label == "LIVE":
            state, error = live_state(health)
            if state == "NO DATA":
                l2 = no_data_line(error)
        self._q(StatusBar).show(l1, l2)

    # ---- size ---------------------------------------------------------------------------------------
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

    # ---- actions ------------------------------------------------------------------------------------
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

    def action_mode(self, mode: str) -> None:
        if mode in MODES and mode != self.mode:
            self.mode = mode
            self._changed()

    def action_mode_cycle(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        self._changed()

    def select_asset(self, asset: str) -> None:
        if asset in self.assets and asset != self.asset:
            self.asset = asset
            self._reports_obj = None
            self._changed(reset_view=True)

    def action_asset(self, delta: int) -> None:
        i = self.assets.index(self.asset) if self.asset in self.assets else 0
        self.select_asset(self.assets[(i + delta) % len(self.assets)])

    def action_asset_search(self) -> None:
        self.push_screen(CommandPalette(providers=[AssetProvider], placeholder="Asset…"))

    def action_timeframe(self, delta: int) -> None:
        i = TIMEFRAMES.index(self.timeframe)
        self.timeframe = TIMEFRAMES[(i + delta) % len(TIMEFRAMES)]
        self.vp.offset = 0
        self.vp.cursor_ts = None
        self._changed()

    def action_zoom(self, delta: int) -> None:
        i = ZOOMS.index(self.vp.zoom) if self.vp.zoom in ZOOMS else 0
        j = min(max(i + delta, 0), len(ZOOMS) - 1)
        self.vp.fit = False  # the trader chose a zoom: it stays until ``c``
        if j != i:
            self.vp.zoom = ZOOMS[j]
        self._changed()

    def action_pan(self, dy: int, dx: int) -> None:
        hm = self._q(HeatmapView)
        snap = self._snap
        if snap is None or self._snap_tag != self._map_tag():
            return  # nothing of this view on screen yet: nothing to pan from
        if dy:
            sub = 2 if self.vp.hires else 1
            rows = max(hm.size.height // 4, 1)
            base = self.vp.center if self.vp.center is not None else (self._auto_center or center_price(snap))
            self.vp.center = base + dy * rows * sub * self.vp.zoom * snap.grid.step
        if dx:
            cols = max(hm.size.width // 4, 1)
            limit = max(snap.grid.values.shape[1] - 2, 0)
            self.vp.offset = min(max(self.vp.offset + dx * cols, 0), limit)
        self._changed()

    def action_recentre(self) -> None:
        """Back to following: the live edge, the last price in the middle, the zoom fitted to the path (unless
        the config fixes a zoom)."""
        self.vp.fit = str(self.cfg["app"].get("zoom", "fit")) == "fit"
        self._changed(reset_view=True)

    def action_venues(self) -> None:
        order = [None, *self.venue_list]
        i = order.index(self.venue_filter) if self.venue_filter in order else 0
        self.venue_filter = order[(i + 1) % len(order)]
        self._reports_obj = None
        self._changed()

    def action_reports(self) -> None:
        self._reports_user_choice = not self.show_reports
        self._layout_for_size()
        self._drawn_key = None
        self.call_after_refresh(self._tick)

    def action_focus_reports(self) -> None:
        table = self._q(ReportsTable)
        if not self.show_reports:
            self.action_reports()
        if table._held is None:  # nothing chosen yet: Enter opens on the newest sweep, the usual jump target
            table.select_first("sweeps")
        table.focus()

    def action_hires(self) -> None:
        self.vp.hires = not self.vp.hires
        self._changed()

    def _on_alert(self, alert) -> None:
        """An alert the engine fired (for any asset): kept for the log (``a``), a toast, the bell."""
        self.alerts.append(alert)
        d = self.cfg.get("alert_delivery") or {}
        if d.get("toast", True):
            sev = {"critical": "error", "warning": "warning"}.get(alert.severity, "information")
            if self._main.has_class("compact"):
                # On a small screen a toast covers a third of the map: only this asset's alerts and warnings
                # get one, on one line (every alert is still in the log, ``a``).
                if alert.asset == self.asset or alert.severity in ("warning", "critical"):
                    text = alert.message if alert.message.startswith(alert.asset) else f"{alert.asset} {alert.message}"
                    limit = max(self.size.width - 12, 20)
                    self.notify(text if len(text) <= limit else text[:limit - 1] + "…", severity=sev, timeout=5)
            elif alert.asset == self.asset or alert.severity in ("warning", "critical") or self._other_toast_ok():
                more, self._toasts_held = self._toasts_held, 0
                msg = alert.message + (f"\n(+{more} more on other assets: a for the log)" if more else "")
                self.notify(msg, title=f"{alert.asset} · {alert.rule}", severity=sev, timeout=TOAST_SECONDS)
            else:
                self._toasts_held += 1  # in the log (``a``); the next toast says how many were held
        if d.get("bell", True) and alert.severity in ("warning", "critical"):
            self.bell()

    def _other_toast_ok(self) -> bool:
        """Whether another asset's information alert may toast now: at most ``OTHER_TOASTS`` of them on screen
        at once (a busy demo minute fired five, stacked over the whole reports panel)."""
        now = time.monotonic()
        shown = [t for t in self._other_toasts if now - t < TOAST_SECONDS]
        self._other_toasts = shown
        if len(shown) >= OTHER_TOASTS:
            return False
        shown.append(now)
        return True

    def action_screener(self) -> None:
        engine = getattr(self.source, "engine", None)
        if engine is None or not hasattr(engine, "screener"):
            self.notify("the screener needs the engine's data: it is still starting", severity="warning")
            return
        self.push_screen(ScreenerScreen(engine.screener))

    def on_screener_screen_open(self, msg: ScreenerScreen.Open) -> None:
        self.select_asset(msg.asset)

    def action_alerts(self) -> None:
        self.push_screen(AlertsScreen(self.alerts))

    def on_alerts_screen_open(self, msg: AlertsScreen.Open) -> None:
        """Open the alert's asset with the time cursor at its moment and its price marked."""
        a = msg.alert
        if a.asset in self.assets:
            self.select_asset(a.asset)
        self.vp.cursor_ts = a.ts
        self.vp.highlight = a.price
        self._changed()

    def action_help(self) -> None:
        keymap = self._keymap if hasattr(self, "_keymap") else {}
        rows = []
        for b in self._all_bindings():
            if b.id in ("help_quit",):
                continue
            key = keymap[b.id] if b.id in keymap else b.key
            rows.append((key, b.description or b.action, b.id or ""))
        self.push_screen(HelpScreen(rows, dict(self.cfg.get("model") or {})))

    def on_reports_table_jump(self, msg: ReportsTable.Jump) -> None:
        """Move the time cursor to the event's moment and highlight its level, panning to show both."""
        snap = self._snap
        if snap is None or self._snap_tag != self._map_tag():
            return  # the map is loading another view: there is no time axis to move the cursor on
        ts = record_ts(msg.record)
        price = record_price(msg.record)
        hm = self._q(HeatmapView)
        g = snap.grid
        if ts is not None:
            self.vp.cursor_ts = ts
            col = int(ts // g.period) - g.col0
            frame = make_frame(snap, self.vp, max(hm.size.height, 1), max(hm.size.width, 1), live=not self.naive)
            if frame.x_of_ts(ts) is None:
                last_body = g.values.shape[1] - (1 if not self.naive else 0)
                self.vp.offset = max(last_body - col - hm.size.width // 2, 0)
        if price is not None:
            self.vp.highlight = price
            if self.frame is None or self.frame.row_of_price(price) is None:
                self.vp.center = price
        self._changed()


def keymap_ids() -> list[str]:
    """Every binding id (for docs and config validation)."""
    return [b.id for b in LiqmapApp._all_bindings() if b.id]


def tcss_path() -> Path:
    return Path(__file__).with_name("liqmap.tcss")

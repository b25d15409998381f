"""The app's keys (part of ``LiqmapApp``): the bindings — one per mode from the mode registry
(``core.modes``), so a new mode brings its key — and the actions behind them, the asset palette, and the
screens' messages that move the view (screener, alerts log, reports panel).

Every binding has an id; ``cfg["keys"]`` (id → key) remaps them through Textual's keymap."""

from __future__ import annotations

from functools import partial

from textual.binding import Binding
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider

from ..core.modes import MODES, REGISTRY as MODE_REGISTRY
from ..core.timeframes import ORDER as TIMEFRAMES
from .alerts_log import AlertsScreen
from .heatmap import HeatmapView
from .help import HelpScreen
from .reports_table import ReportsTable, record_price, record_ts
from .screener import ScreenerScreen
from .screener_table import ScreenerTable
from .viewport import ZOOMS, center_price, make_frame

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


class KeysMixin:
    """The actions behind the keys (part of ``LiqmapApp``; its ``BINDINGS`` are this module's)."""

    @classmethod
    def _all_bindings(cls) -> list[Binding]:
        """The app's, the reports panel's, the help screen's, the alerts log's and the screener's bindings (all
        remappable by id)."""
        return [b for bs in (cls.BINDINGS, ReportsTable.BINDINGS, HelpScreen.BINDINGS, AlertsScreen.BINDINGS,
                             ScreenerScreen.BINDINGS, ScreenerTable.BINDINGS) for b in bs if isinstance(b, Binding)]

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

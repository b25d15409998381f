"""The liqmap terminal app: one heatmap, five modes, a reports panel, keyboard first, cheap over ssh.

The app owns only navigation state (``Viewport``, asset, mode, timeframe, venue filter). On a fixed tick
(``cfg["app"]["hz"]``) it asks its ``SnapshotSource`` for the newest snapshot of the current view and does
nothing when neither the snapshot version nor the view changed. Drawing goes through Line-API widgets
that repaint only changed rows; the filling column has its own 2-cell widget.

``LiqmapApp`` is put together here from its parts, one module each:

- ``app_keys``: the bindings (one per mode from the mode registry, ``core.modes``) and their actions;
- ``app_view``: the view asked of the source, the UI tick, drawing, the loading state, a change of view;
- ``app_status``: the status bar and the theme's styles;
- ``app_layout``: the layout for the terminal's size;
- ``app_source``: building, starting and stopping the data source;
- ``app_alerts``: toasts, the bell and the log of the alerts the engine fires.

Every binding has an id; ``cfg["keys"]`` (id → key) remaps them through Textual's keymap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from ..core.modes import spec as mode_spec
from ..core.snapshot import Snapshot
from .app_alerts import OTHER_TOASTS, TOAST_SECONDS, AlertsMixin  # noqa: F401 - their old home
from .app_keys import BINDINGS, AssetProvider, KeysMixin
from .app_layout import COMPACT_WIDTH, MIN_HEIGHT, MIN_WIDTH, WIDE_WIDTH, LayoutMixin, map_columns  # noqa: F401
from .app_source import SourceMixin
from .app_status import StatusMixin
from .app_view import ViewMixin
from .axes import PriceAxis, TimeAxis
from .heatmap import HeatmapView
from .live_column import LiveColumn, ProfileColumn
from .palettes import Palette, Scale, build_palette, detect_color_system
from .reports_table import ReportsTable
from .source import SnapshotSource, View
from .startup_trace import trace  # noqa: F401 - commands/run.py's
from .status import StatusBar
from .themes import ThemeSpec, to_textual
from .viewport import Viewport


class LiqmapApp(KeysMixin, ViewMixin, StatusMixin, LayoutMixin, SourceMixin, AlertsMixin, App):
    CSS_PATH = "liqmap.tcss"
    TITLE = "liqmap"
    COMMANDS = App.COMMANDS | {AssetProvider}
    AUTO_FOCUS = None  # arrows pan the map until the user moves into the reports panel (Enter / Tab)
    BINDINGS = BINDINGS  # on the App class itself: Textual reads bindings from DOM classes only

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
        self._held_scale = Scale()  # the resting layer's own ramp (``MapGrid.resting``)
        self._held_shown: tuple[float, float] | None = None  # its (scale, floor) as last drawn, None: not in view
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


def keymap_ids() -> list[str]:
    """Every binding id (for docs and config validation)."""
    return [b.id for b in LiqmapApp._all_bindings() if b.id]


def tcss_path() -> Path:
    return Path(__file__).with_name("liqmap.tcss")

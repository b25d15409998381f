"""The status bar's two lines and the theme's styles (part of ``LiqmapApp``): what is on screen (asset,
mode, timeframe, source, venue health), the verdict of the snapshot drawn and the colour key; a theme change
rebuilds the palette and the styles and redraws."""

from __future__ import annotations

from rich.style import Style

from ..core.modes import MODE_LABEL
from ..core.params import ModelParams
from ..core.venues import LIQ_SAMPLED, VENUE_SHORT
from .axes import time_label
from .palettes import build_palette
from .source import SourceStatus
from .status import (StatusBar, colour_meaning, held_legend, legend, live_state, no_data_line, status_line,
                     view_line)
from .themes import ThemeSpec


class StatusMixin:
    """Status bar and styles (part of ``LiqmapApp``)."""

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
        # what a colour's USD is: the model modes draw at risk × chance of reach^α (core/grids/reach.py)
        alpha = float((self.cfg.get("model") or {}).get("synthetic_reach_alpha", ModelParams.synthetic_reach_alpha))
        unit = "½row" if self.vp.hires else "row"
        key = legend(self.palette.colors[:self.palette.n + 1], self._scale.value if snap is not None else 0.0,
                     unit, self._scale.floor, colour_meaning(self.mode, alpha))
        if snap is not None and self._held_shown is not None:  # the resting layer's own ramp and scale
            key.append_text(held_legend(self.palette.held_colors, self._held_shown[0], unit))
        sampled = [v for v in self.venue_list if v in LIQ_SAMPLED and self.venue_filter in (None, v)]
        # Raw and Hybrid draw real liquidations: say which venues' streams are sampled (one print per symbol per
        # second, core/venues.py; the help explains). Before the verdict, so 80 columns still show it.
        note = (" ".join(VENUE_SHORT[v].lower() for v in sampled) + " ≤1/s"
                if self.mode in ("raw", "hybrid") and sampled and snap is not None else "")
        l2 = view_line(verdict, self.vp.zoom, step, self.venue_filter, cursor, key, width=self.size.width,
                       compact=compact, fit=self.vp.fit, note=note)
        if label == "LIVE":
            state, error = live_state(health)
            if state == "NO DATA":
                l2 = no_data_line(error)
        self._q(StatusBar).show(l1, l2)

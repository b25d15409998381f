"""The reports panel: Walls (with the asymmetry read), Sweeps, Absorptions, Convergence chips.

A small custom Line-API table instead of DataTable, which resends the whole table on every update: rows
are plain text with a style, keyed by their text, so a report update repaints only the rows that changed.

Records come from ``liqmap.core.reports`` as dicts; they are rendered generically (known keys first:
side, price, usd, venue(s), status...), so a new field never breaks the panel. Up/Down select a wall, sweep
or absorption; Enter posts ``ReportsTable.Jump`` and the app moves the map's time cursor there.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from ..core.buckets import label
from .lines import CachedLines
from .live_column import side_sign

SECTIONS = (("walls", "WALLS"), ("sweeps", "SWEEPS"), ("absorptions", "ABSORPTIONS"),
            ("convergence", "CONVERGENCE"))
VENUE_SHORT = {"binance": "bin", "bybit": "byb", "okx": "okx", "bitmex": "bmx", "deribit": "der"}


def usd(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(x):
        return "-"
    a = abs(x)
    if a >= 1e9:
        return f"${x / 1e9:.1f}B"
    if a >= 1e6:
        return f"${x / 1e6:.1f}M"
    if a >= 1e3:
        return f"${x / 1e3:.0f}k"
    return f"${x:.0f}"


def first(rec: dict, *names: str) -> Any:
    for n in names:
        if n in rec and rec[n] is not None:
            return rec[n]
    return None


def record_ts(rec: dict) -> float | None:
    v = first(rec, "ts", "time", "start", "t", "start_ts", "end_ts")
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def record_price(rec: dict) -> float | None:
    v = first(rec, "price", "level", "mid")
    for lo, hi in (("low", "high"), ("price_lo", "price_hi")):
        if v is None and rec.get(lo) is not None and rec.get(hi) is not None:
            try:
                return (float(rec[lo]) + float(rec[hi])) / 2
            except (TypeError, ValueError):
                return None
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def venues_text(rec: dict) -> str:
    v = first(rec, "venues", "venue")
    if v is None:
        return ""
    if isinstance(v, str):
        v = [v]
    try:
        names = [VENUE_SHORT.get(str(x), str(x)[:3]) for x in v]
    except TypeError:
        return str(v)
    return ",".join(names) if len(names) <= 2 else f"{names[0]}+{len(names) - 1}"  # the panel is narrow


def side_text(rec: dict, section: str) -> str:
    s = first(rec, "side", "absorbing_side")
    if s is None:
        return "?"
    sign = side_sign(s)
    if section == "walls" or section == "absorptions":
        return {1: "bid", -1: "ask"}.get(sign, str(s))
    if isinstance(s, str):
        return s  # sweeps say which way they went (buy / sell) in their own words
    return {1: "buy", -1: "sell"}.get(sign, str(s))


def fmt_price(p: float | None, step: float) -> str:
    return "-" if p is None else label(p, step)


def format_record(section: str, rec: dict, step: float) -> str:
    """One line for a record; known fields first, then nothing else (the panel is narrow)."""
    p = fmt_price(record_price(rec), step)
    if section == "walls":
        parts = [side_text(rec, section), p, usd(first(rec, "usd", "size_usd", "size"))]
        d = first(rec, "distance_pct")
        if d is None and rec.get("distance_bp") is not None:
            try:
                d = float(rec["distance_bp"]) / 100.0
            except (TypeError, ValueError):
                d = None
        if d is not None:
            try:
                parts.append(f"{float(d):+.2f}%")
            except (TypeError, ValueError):
                pass
        dens = first(rec, "density")
        if dens is not None:
            try:
                parts.append(f"{float(dens):.0f}×")
            except (TypeError, ValueError):
                pass
        age = first(rec, "age_s", "age")
        if age is not None:
            try:
                parts.append(f"{float(age):.0f}s" if float(age) < 120 else f"{float(age) / 60:.0f}m")
            except (TypeError, ValueError):
                pass
        parts.append(str(first(rec, "status") or ""))
        parts.append(venues_text(rec))
    elif section == "sweeps":
        ts = record_ts(rec)
        t = time.strftime("%H:%M:%S", time.gmtime(ts)) if ts else "--:--:--"
        parts = [t, side_text(rec, section), usd(first(rec, "usd", "total_usd", "magnitude", "size_usd")), p]
        n = first(rec, "levels", "levels_crossed")
        if n is not None:
            parts.append(f"{n}lv")
        c = first(rec, "count", "repeats")
        if c and c != 1:
            parts.append(f"×{c}")
        parts.append(venues_text(rec))
    elif section == "absorptions":
        parts = [p, side_text(rec, section), usd(first(rec, "usd", "absorbed_usd", "absorbed"))]
        d = first(rec, "duration", "duration_s")
        if d is not None:
            try:
                parts.append(f"{float(d):.0f}s")
            except (TypeError, ValueError):
                pass
        parts.append(str(first(rec, "outcome", "status") or ""))
    else:  # convergence chip
        what = first(rec, "parts", "kinds", "components", "what")
        if isinstance(what, (list, tuple)):
            what = "+".join(str(x)[0].upper() for x in what)
        parts = [f"[{p} {what or ''}".rstrip() + "]"]
        if rec.get("usd") is not None:
            parts.append(usd(rec["usd"]))
        elif rec.get("score") is not None:
            try:
                parts.append(f"score {float(rec['score']):.2f}")
            except (TypeError, ValueError):
                parts.append(str(rec["score"]))
    return " ".join(x for x in parts if x)


def asymmetry_text(a: Any) -> str:
    if a is None:
        return ""
    if isinstance(a, str):
        return a
    if isinstance(a, dict):
        read = first(a, "read", "text", "label", "dominant")
        ratio = first(a, "ratio", "bid_ask_ratio", "imbalance")
        bits = []
        share = first(a, "bid_share")
        if share is not None and ratio is None:
            try:
                bits.append(f"bid share {float(share) * 100:.0f}%")
            except (TypeError, ValueError):
                pass
        if ratio is not None:
            try:
                bits.append(f"bid/ask {float(ratio):.2f}")
            except (TypeError, ValueError):
                bits.append(str(ratio))
        if read:
            bits.append(str(read))
        return " · ".join(bits) if bits else ", ".join(f"{k}={v}" for k, v in list(a.items())[:3])
    return str(a)


@dataclass(frozen=True)
class Row:
    text: str
    kind: str  # header | info | rec | empty
    section: str = ""
    record: dict | None = None


def build_rows(reports: dict, step: float, limit: int = 8) -> list[Row]:
    rows: list[Row] = []
    for key, title in SECTIONS:
        recs = reports.get(key) or []
        if isinstance(recs, dict):
            recs = list(recs.values())
        rows.append(Row(f"{title} ({len(recs)})", "header", key))
        if key == "walls":
            a = asymmetry_text(reports.get("asymmetry"))
            if a:
                rows.append(Row(a, "info", key))
        if not recs:
            rows.append(Row("  none yet", "empty", key))
        for rec in list(recs)[:limit]:
            if isinstance(rec, dict):
                rows.append(Row(" " + format_record(key, rec, step), "rec", key, rec))
    return rows


class ReportsTable(CachedLines, can_focus=True):
    DEFAULT_CSS = "ReportsTable { width: 46; height: 1fr; }"

    BINDINGS = [
        Binding("up", "select(-1)", "Prev event", show=False, id="reports_up"),
        Binding("down", "select(1)", "Next event", show=False, id="reports_down"),
        Binding("enter", "jump", "Jump to event", id="jump"),
        Binding("escape", "leave", "Back to map", id="reports_leave"),
    ]

    class Jump(Message):
        """The user chose a record: move the map's time cursor to it and highlight its level."""

        def __init__(self, section: str, record: dict) -> None:
            super().__init__()
            self.section = section
            self.record = record

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rows: list[Row] = []
        self.selected = 0  # index among selectable rows
        self._styles: dict[str, Style] = {}
        self._reports_id = None

    def selectable(self) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r.kind == "rec" and r.section != "convergence"]

    def update_reports(self, reports: dict, step: float, styles: dict[str, Style]) -> None:
        self._styles = styles
        self.rows = build_rows(reports or {}, step)
        n = len(self.selectable())
        self.selected = min(self.selected, max(n - 1, 0))
        self.redraw()

    def redraw(self) -> None:
        if not self._styles:
            return
        width = max(self.size.width, 1)
        height = max(self.size.height, 1)
        sel = self.selectable()
        sel_row = sel[self.selected] if sel else -1
        top = 0
        if sel_row >= height:
            top = sel_row - height + 1
        visible = self.rows[top:top + height]
        focused = self.has_focus
        keys = []
        for i, r in enumerate(visible):
            is_sel = (top + i) == sel_row
            keys.append((r.text, r.kind, is_sel and focused, is_sel))
        st = self._styles

        def build(y: int) -> Strip:
            text, kind, sel_focus, is_sel = keys[y]
            style = st.get(kind, st["text"])
            if is_sel:
                style = st["selected"] if sel_focus else st["selected_blur"]
            t = text[:width].ljust(width)
            return Strip([Segment(t, style)], width)

        self.set_lines(keys, build)

    def on_resize(self) -> None:
        self.invalidate()
        self.redraw()

    def on_focus(self) -> None:
        self.redraw()

    def on_blur(self) -> None:
        self.redraw()

    def action_select(self, delta: int) -> None:
        n = len(self.selectable())
        if n:
            self.selected = (self.selected + delta) % n
            self.redraw()

    def current(self) -> Row | None:
        sel = self.selectable()
        return self.rows[sel[self.selected]] if sel else None

    def action_leave(self) -> None:
        self.screen.set_focus(None)

    def action_jump(self) -> None:
        row = self.current()
        if row is not None and row.record is not None:
            self.post_message(self.Jump(row.section, row.record))

"""The status bar: asset, mode, timeframe, each venue's health and freshness, lag, and the data source.

Two lines. The first says what is on screen and whether to trust it (venue dots: ● connected, ◐ stale,
○ down, with the age of the last message); the second carries the one-line verdict and the view (zoom,
venue filter). A DEMO source is always spelled out as "DEMO (simulated market)" so nobody mistakes it for
live data. Health records are read generically (state/status, age, lag in s or ms).
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..core.buckets import label
from ..core.venues import VENUE_SHORT  # three letters, upper case as declared
from ..core.modes import MODE_LABEL, spec

SOURCE_LABEL = {"DEMO": "DEMO (simulated market)", "REPLAY": "REPLAY", "LIVE": "LIVE"}
DOT = {"connected": "●", "ok": "●", "live": "●", "lagging": "◑", "stale": "◐", "down": "○", "error": "○",
       "connecting": "◌", "disconnected": "○"}


def finite(v: Any) -> float | None:
    """``v`` as a finite float, or None (records of unknown exact shape: strings, None, NaN)."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def venue_state(h: Any) -> tuple[str, float | None, float | None]:
    """(state, last message age s, lag s) from a health record of unknown exact shape."""
    if isinstance(h, str):
        return h, None, None
    if not isinstance(h, dict):
        h = getattr(h, "__dict__", {}) or {}
    state = str(h.get("state") or h.get("status") or "connecting").lower()
    age = finite(h.get("age", h.get("last_age", h.get("last_message_age", h.get("age_s")))))
    lag = finite(h.get("lag", h.get("lag_s", h.get("lag_ewma", h.get("lag_last")))))
    if lag is None and h.get("lag_ms") is not None:
        lag = (finite(h.get("lag_ms")) or 0.0) / 1000.0
    return state, age, lag


def fmt_age(age: float | None) -> str:
    if age is None:
        return ""
    if age < 10:
        return f"{age:.0f}s" if age >= 1 else "<1s"
    if age < 120:
        return f"{age:.0f}s"
    if age < 7200:
        return f"{age / 60:.0f}m"
    return f"{age / 3600:.0f}h"


DELIVERING = ("connected", "ok", "live", "lagging")
STALE_AGE_SHOWN = 5.0  # s: on a compact bar a venue's age shows from here


def live_state(health: dict) -> tuple[str, str]:
    """What a LIVE source can honestly say: ("LIVE", "") while some venue delivers, ("CONNECTING", "") while
    all are still connecting, else ("NO DATA", "venue: its last error in full") — a green LIVE badge over five
    dead connections once hid that nothing was arriving."""
    states = {v: venue_state(h)[0] for v, h in (health or {}).items()}
    if not states or any(s in DELIVERING for s in states.values()):
        return "LIVE", ""
    if all(s == "connecting" for s in states.values()):
        return "CONNECTING", ""
    for venue, h in health.items():
        err = h.get("last_error") if isinstance(h, dict) else getattr(h, "last_error", "")
        if err:
            return "NO DATA", f"{venue}: {err}"
    return "NO DATA", f"{next(iter(states))}: {next(iter(states.values()))}"


def no_data_line(error: str) -> Text:
    """The status bar's second line when no venue delivers: the first error, then where to go next."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(" NO DATA ", style="bold white on red")
    t.append(f" {error} ", style="red")
    t.append("│ try liqmap --demo, or liqmap doctor to check each venue", style="bold")
    return t


def status_line(asset: str, mode: str, tf: str, health: dict, source: str, venue_filter: str | None,
                compact: bool = False, badge: str = "") -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f" {asset} ", style="bold reverse")
    t.append(f" {MODE_LABEL.get(mode, mode)} ", style="bold")
    t.append(f"{tf} ", style="bold")
    t.append("│ ", style="dim")
    lags = []
    for venue, h in (health or {}).items():
        state, age, lag = venue_state(h)
        if venue_filter and venue != venue_filter:
            style = "dim"
        else:
            style = {"connected": "green", "ok": "green", "live": "green", "lagging": "yellow",
                     "stale": "yellow"}.get(state, "red")
            if state == "connecting":
                style = "yellow"
        name = VENUE_SHORT.get(venue, venue[:3].upper()) if compact else venue
        t.append(f"{DOT.get(state, '?')}{name}", style=style)
        a = fmt_age(age)
        if a and (not compact or (age is not None and age >= STALE_AGE_SHOWN)):
            # compact: only a late venue's age (a fresh one's green dot says enough; 80 columns are tight)
            t.append(f" {a}", style="dim" if not compact else style)
        t.append(" ")
        if state == "lagging" and lag is not None:
            t.append(f"{lag:.1f}s late ", style="yellow")  # how far behind, next to the venue it concerns
        if lag is not None and state in ("connected", "ok", "live", "lagging", "stale"):
            lags.append(max(lag, 0.0))  # a venue clock ahead of ours is skew, not negative lag
    if lags:
        t.append("│ ", style="dim")
        t.append(f"lag {max(lags) * 1000:.0f}ms ", style="yellow" if max(lags) > 1 else "")
    t.append("│ ", style="dim")
    src = SOURCE_LABEL.get(source, source)
    style = "bold black on yellow" if source == "DEMO" else "bold black on cyan" if source == "REPLAY" \
        else "bold black on green"
    if source == "LIVE":
        src, _ = live_state(health)
        style = {"LIVE": style, "CONNECTING": "bold black on yellow"}.get(src, "bold white on red")
    if source == "BUS" and badge.startswith("DOWN"):
        style = "bold white on red"  # the bus is away: the map on screen is the last one received
    t.append(src + (f" {badge}" if badge else ""), style=style)
    return t


def legend(colors, top_usd: float, unit: str = "cell", floor_usd: float = 0.0, what: str = "") -> Text:
    """What a colour is worth: the dimmest colour's USD (the view's typical cell: everything up to it is
    dim), the ramp as a swatch, dim to bright, and the USD the brightest colour stands for (the strongest
    cell in view, rounded up a little), then ``what`` that USD is (:func:`colour_meaning`)."""
    from rich.style import Style

    from .reports_table import usd

    t = Text(no_wrap=True)
    if not (top_usd > 0 and math.isfinite(top_usd)) or len(colors) < 2:
        return t
    ramp = list(colors[1:])
    picks = [ramp[min(len(ramp) - 1, round(i * (len(ramp) - 1) / 4))] for i in range(5)]
    if floor_usd > 0:
        t.append(f"{usd(floor_usd)} ", style="dim")
    for c in picks:
        t.append(" ", style=Style(bgcolor=c))
    t.append(f" {usd(top_usd)}/{unit}{' ' + what if what else ''} ", style="dim")
    return t


def held_legend(colors, top_usd: float, unit: str = "row") -> Text:
    """The resting layer's key, after the flow's: its own ramp as a swatch and the USD its brightest colour
    stands for — positions held for days (docs/model.md §3 step 13), drawn in a hue apart from the flow's."""
    key = legend((None, *colors), top_usd, unit, what="held≥days")  # ``legend`` skips the empty colour first
    return Text("+ ", style="dim", no_wrap=True) + key if key.plain else key


def colour_meaning(mode: str, alpha: float) -> str:
    """What a cell's USD is in ``mode``: the model modes draw USD at risk × the chance price reaches the row
    within the hour, to the power ``alpha`` (``synthetic_reach_alpha``, core/grids/reach.py); Raw and Positions
    draw USD liquidated / at the wallets' exact levels."""
    if not spec(mode).model:  # the modes that draw the model's layers (core/modes.py), the weighted ones
        return ""
    if not alpha > 0:
        return "at risk"
    return "exp liq/h" if alpha == 1 else f"at risk×reach^{alpha:g}"


def fit_verdict(verdict: str, width: int) -> str:
    """The verdict's parts (``▼ … · ▲ … · book … · CONVERGENCE …``, most important first) that fit ``width``,
    dropped whole from the end: a cut-off "▲ 66,1…" reads as a different price."""
    parts = verdict.split(" \u00b7 ") if verdict else []
    while parts and len(" \u00b7 ".join(parts)) > width and len(parts) > 1:
        parts.pop()
    return " \u00b7 ".join(parts)


def view_line(verdict: str, zoom: int, step: float, venue_filter: str | None, cursor: str,
              key: Text | None = None, width: int | None = None, compact: bool = False, fit: bool = False,
              note: str = "") -> Text:
    """Zoom, venue filter, cursor, the verdict and the colour legend. With ``width`` the verdict keeps the
    parts that fit whole; ``compact`` (below 100 columns) leaves out the zoom and an unfiltered venue list so
    the two magnets fit 80 columns. ``fit``: the zoom follows the price path (``zoom fit 4×``). ``note``: a short
    qualifier of what the map shows (``bin ≤1/s``: that venue's liquidations are sampled), placed before the
    verdict so that a narrow terminal keeps it (the legend at the end is cut first)."""
    t = Text(no_wrap=True, overflow="ellipsis")
    z = f"zoom {'fit ' if fit else ''}{zoom}×"
    if not compact:
        # the price a row spans, written like the axis writes prices (0.0₈5 for PEPE, not 5e-09)
        row = step * zoom
        t.append(f" {z} {label(row, row)}/row " if step > 0 else f" {z} ", style="dim")
    elif zoom != 1:
        t.append(f" {z} ", style="dim")
    if not compact or venue_filter:
        t.append(f"venues: {venue_filter or 'all'} ", style="dim")
    if cursor:
        t.append(f"cursor {cursor} ", style="bold")
    if note:
        t.append(f"{'' if t.plain else ' '}{note} ", style="dim")
    if verdict:
        if t.plain:
            t.append("│ ", style="dim")
        else:
            t.append(" ")
        t.append(fit_verdict(verdict, width - len(t.plain) - 1) if width else verdict)
    if key is not None and key.plain:  # last: a narrow terminal cuts the legend before the verdict
        t.append(" │ ", style="dim")
        t.append_text(key)
    return t


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 2; width: 1fr; background: $panel; color: $foreground; text-wrap: nowrap;
                text-overflow: ellipsis; }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("", *args, **kwargs)
        self._last: tuple[str, str] | None = None

    def show(self, line1: Text, line2: Text) -> bool:
        """Update only when the text changed (a status bar repaint is two rows; skip it when idle)."""
        key = (line1.plain, line2.plain)
        if key == self._last:
            return False
        self._last = key
        both = Text("\n", no_wrap=True, overflow="ellipsis").join([line1, line2])
        both.no_wrap, both.overflow = True, "ellipsis"  # a narrow terminal cuts the line, never wraps it
        self.update(both)
        return True

    @property
    def plain(self) -> str:
        return "\n".join(self._last) if self._last else ""

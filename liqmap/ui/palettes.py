"""Heatmap palettes: one precomputed Rich ``Style`` per level, per colour system.

Styles are built once per (theme, colour system) and reused for every cell, so drawing a row never parses
a colour. For 256 colours the ramp is downgraded here (once) rather than by the driver on every frame; for
16 colours the theme's own ``ramp16`` is used, because downgrading a smooth ramp to 16 colours collapses
most of its steps into two or three.

Levels: 0 is an empty cell; 1..N map onto the ramp. ``level_of`` turns values into levels against a
scale that only moves in powers of two with hysteresis (see ``Scale``), so a growing live column does not
repaint the whole map every tick.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from rich.color import Color, ColorSystem
from rich.style import Style

from .themes import ThemeSpec

COLOR_SYSTEMS = ("truecolor", "256", "16")


def detect_color_system(environ: dict[str, str] | None = None) -> str:
    """``LIQMAP_COLOR_SYSTEM`` (set by the CLI from ``--color``), else guess from COLORTERM / TERM."""
    env = os.environ if environ is None else environ
    forced = env.get("LIQMAP_COLOR_SYSTEM", "auto")
    if forced in COLOR_SYSTEMS:
        return forced
    if env.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return "truecolor"
    if "256" in env.get("TERM", ""):
        return "256"
    return "16"


def textual_color_system(system: str) -> str:
    """The name Textual/Rich use (``TEXTUAL_COLOR_SYSTEM``)."""
    return {"truecolor": "truecolor", "256": "256", "16": "standard"}[system]


def _col(spec: str, system: str) -> Color:
    c = Color.parse(spec)
    if system == "256" and c.triplet is not None:
        return c.downgrade(ColorSystem.EIGHT_BIT)
    if system == "16" and c.triplet is not None:
        return c.downgrade(ColorSystem.STANDARD)
    return c


@dataclass(frozen=True)
class Palette:
    """Everything the heatmap needs to paint, for one theme and colour system."""

    system: str
    levels: tuple[Style, ...]  # index 0 = empty cell background, 1..n the ramp
    colors: tuple[Color, ...]
    trace: Color
    long: Color
    short: Color
    wall_bid: Color
    wall_ask: Color
    cursor: Color
    highlight: Color

    @property
    def n(self) -> int:
        return len(self.levels) - 1

    def cell(self, level: int, fg: Color | None = None, bold: bool = False) -> Style:
        """A cell background of ``level`` with a foreground glyph colour (overlays); a glyph that would be
        the colour of its own cell takes the empty-cell colour instead, so it stays visible."""
        bg = self.colors[level]
        if fg is not None and fg == bg:
            fg = self.colors[0]
        return Style(bgcolor=bg, color=fg, bold=bold)


def build_palette(theme: ThemeSpec, system: str) -> Palette:
    if system == "16":
        ramp = [Color.parse(c) for c in theme.ramp16]
        empty = Color.parse(theme.empty16)
        trace = Color.parse(theme.trace16)
    else:
        ramp = [_col(c, system) for c in theme.ramp]
        empty = _col(theme.heat["empty"], system)
        trace = _col(theme.heat["trace"], system)
    colors = (empty, *ramp)
    levels = tuple(Style(bgcolor=c) for c in colors)
    h = {k: _col(v, system) for k, v in theme.heat.items()}
    return Palette(system=system, levels=levels, colors=colors, trace=trace, long=h["long"], short=h["short"],
                   wall_bid=h["wall_bid"], wall_ask=h["wall_ask"], cursor=h["cursor"], highlight=h["highlight"])


class Scale:
    """The value that maps to the top of the ramp, moved in powers of two with hysteresis.

    It rises as soon as the visible maximum exceeds it and falls only when the maximum drops below a
    quarter of it: small changes in the data never recolour the whole map.
    """

    def __init__(self) -> None:
        self.value = 0.0

    def update(self, vmax: float) -> bool:
        """Track ``vmax``; True when the scale changed (the whole map must be recoloured)."""
        if not (vmax > 0 and math.isfinite(vmax)):
            return False
        if self.value <= 0 or vmax > self.value or vmax < self.value / 4:
            new = 2.0 ** math.ceil(math.log2(vmax))
            if new != self.value:
                self.value = new
                return True
        return False


def level_of(values: np.ndarray, scale: float, n: int, log_k: float = 40.0) -> np.ndarray:
    """Values → uint8 levels 0..n. Log-like compression so small clusters stay visible next to big ones."""
    v = np.asarray(values, dtype=np.float32)
    if scale <= 0:
        return np.zeros(v.shape, dtype=np.uint8)
    x = np.clip(v / np.float32(scale), 0.0, 1.0)
    y = np.log1p(x * np.float32(log_k)) / np.float32(math.log1p(log_k))
    lv = np.ceil(y * n).astype(np.uint8)
    lv[v <= 0] = 0
    return np.minimum(lv, n)

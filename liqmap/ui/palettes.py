"""Heatmap palettes: one precomputed Rich ``Style`` per level, per colour system.

Styles are built once per (theme, colour system) and reused for every cell, so drawing a row never parses
a colour. For 256 colours the ramp is downgraded here (once) rather than by the driver on every frame; for
16 colours the theme's own ``ramp16`` is used, because downgrading a smooth ramp to 16 colours collapses
most of its steps into two or three.

Levels: 0 is an empty cell; 1..N map onto the ramp. ``level_of`` turns values into levels against a
scale that follows the view's strongest cell in small steps with hysteresis (see ``Scale``), so a growing
live column does not repaint the whole map every tick, and the top of the ramp always means "the strongest
levels in view". The curve is a mild gamma on the value's share of that scale, not a logarithm: a log curve
puts everything within a decade of the peak in the upper third of the ramp, so a smooth field reads as one
bright wash and the peaks a trader is looking for do not stand out (the issue on the map's levels measured
58 % of the map in the brightest colour). With the gamma, a cell at half the peak is mid-ramp, a cell at a
tenth of it is in the lowest fifth, and any non-empty cell is at least level 1, so small clusters stay
visible as a dim trace next to the big ones.
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
    levels: tuple[Style, ...]  # index 0 = empty cell background, 1..n the ramp, n+1.. the held ramp
    colors: tuple[Color, ...]
    trace: Color
    long: Color
    short: Color
    wall_bid: Color
    wall_ask: Color
    cursor: Color
    highlight: Color
    ramp_n: int  # the flow's ramp length; the held ramp follows it

    @property
    def n(self) -> int:
        """The ramp's levels: a value's level is 1..n."""
        return self.ramp_n

    @property
    def held_n(self) -> int:
        """The resting layer's ramp levels: its level k (1..held_n) is colour ``n + k``."""
        return len(self.levels) - 1 - self.n

    @property
    def held_colors(self) -> tuple[Color, ...]:
        return self.colors[self.n + 1:]

    def cell(self, level: int, fg: Color | None = None, bold: bool = False) -> Style:
        """A cell background of ``level`` with a foreground glyph colour (overlays); a glyph that would be
        the colour of its own cell takes the empty-cell colour instead, so it stays visible."""
        bg = self.colors[level]
        if fg is not None and fg == bg:
            fg = self.colors[0]
        return Style(bgcolor=bg, color=fg, bold=bold)


MIN_STEP_256 = 3.0  # CIE L* between two neighbouring ramp colours on a 256-colour terminal (just visible)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB triplets (..., 3) in 0–255 → CIE L*a*b* (D65): distances in it follow what the eye sees."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1)


def _xterm_lab() -> tuple[np.ndarray, np.ndarray]:
    from rich.color import EIGHT_BIT_PALETTE

    idx = np.arange(16, 256)  # the 6×6×6 cube and the grey ramp: the first 16 are the user's own, unknown
    return idx, _lab(np.array([tuple(EIGHT_BIT_PALETTE[int(i)]) for i in idx]))


def ramp_256(ramp: tuple[str, ...], empty: str) -> tuple[int, list[int]]:
    """The empty colour and the ramp on a 256-colour terminal: (xterm index of empty, index per ramp level).

    Rich's nearest-colour downgrade maps the dark theme's two lowest levels both to #00005f, a saturated navy
    brighter than the next level: over ssh (tmux, 256 colours) the quietest cells were the loudest on the map.
    Here the whole ramp is fitted at once: the xterm colours nearest the theme's (in L*a*b*) whose lightness
    keeps the ramp's own order, each at least ``MIN_STEP_256`` L* past the previous one and past the empty
    cell, so every level stays distinct and a brighter level always reads brighter (dynamic programming over
    the 240 non-system colours)."""
    idx, lab = _xterm_lab()
    want = _lab(np.array([Color.parse(c).triplet for c in ramp]))
    # The empty cell keeps Rich's downgrade: Textual paints the app's background with it, and an empty cell of
    # another colour would draw the map's blank rows as bands against the panel's background.
    e_num = _col(empty, "256").number or 16
    e = (int(np.flatnonzero(idx == e_num)[0]) if e_num >= 16  # (a system colour: the nearest of the 240)
         else int(np.argmin(((lab - _lab(np.array(Color.parse(empty).triplet))) ** 2).sum(-1))))
    sign = 1.0 if want[-1, 0] >= want[0, 0] else -1.0  # a light theme's ramp darkens as it grows
    light = lab[:, 0] * sign
    dist = ((want[:, None, :] - lab[None, :, :]) ** 2).sum(-1)
    inf = np.inf
    cost = np.where(light > light[e] + MIN_STEP_256, dist[0], inf)
    back = []
    order = np.argsort(light)
    sorted_light = light[order]
    for i in range(1, len(ramp)):
        # best previous colour among those at least MIN_STEP_256 darker: a running minimum in lightness order
        arg = np.empty(len(order), dtype=np.int64)  # arg[k]: the cheapest of the k+1 darkest colours
        best, at = inf, int(order[0])
        for k, c in enumerate(cost[order]):
            if c < best:
                best, at = c, int(order[k])
            arg[k] = at
        pos = np.searchsorted(sorted_light, light - MIN_STEP_256, side="left") - 1  # darkest enough, per colour
        prev = arg[np.maximum(pos, 0)]
        back.append(prev)
        cost = np.where(pos >= 0, cost[prev], inf) + dist[i]
    j = int(np.argmin(cost))
    if not np.isfinite(cost[j]):  # a ramp too long for 240 colours: Rich's per-colour downgrade
        return int(idx[e]), [_col(c, "256").number or 0 for c in ramp]
    out = [j]
    for b in reversed(back):
        j = int(b[j])
        out.append(j)
    return int(idx[e]), [int(idx[k]) for k in reversed(out)]


def build_palette(theme: ThemeSpec, system: str) -> Palette:
    if system == "16":
        ramp = [Color.parse(c) for c in theme.ramp16]
        held = [Color.parse(c) for c in theme.held16]
        empty = Color.parse(theme.empty16)
        trace = Color.parse(theme.trace16)
    elif system == "256":
        e, fitted = ramp_256(tuple(theme.ramp), theme.heat["empty"])
        ramp = [Color.from_ansi(i) for i in fitted]
        held = [Color.from_ansi(i) for i in ramp_256(tuple(theme.held), theme.heat["empty"])[1]]
        empty = Color.from_ansi(e)
        trace = _col(theme.heat["trace"], system)
    else:
        ramp = [_col(c, system) for c in theme.ramp]
        held = [_col(c, system) for c in theme.held]
        empty = _col(theme.heat["empty"], system)
        trace = _col(theme.heat["trace"], system)
    colors = (empty, *ramp, *held)
    levels = tuple(Style(bgcolor=c) for c in colors)
    h = {k: _col(v, system) for k, v in theme.heat.items()}
    return Palette(system=system, levels=levels, colors=colors, trace=trace, long=h["long"], short=h["short"],
                   wall_bid=h["wall_bid"], wall_ask=h["wall_ask"], cursor=h["cursor"], highlight=h["highlight"],
                   ramp_n=len(ramp))


STEPS_PER_OCTAVE = 8  # the scale moves in steps of 2^(1/8) ≈ 9 %
FALL_STEPS = 2  # ... and falls only when the peak is two steps (≈ 16 %) below it
GAMMA = 0.8  # level = ceil(n · share^GAMMA): 0.5 → 58 % of the ramp, 0.1 → 16 %, 0.01 → 3 % (level 1)
FLOOR_QUANTILE = 50.0  # the typical heat cell (the median of the non-empty ones) ...
FLOOR_MAX_SHARE = 0.5  # ... is the ramp's bottom, but never above half the peak


def _quantize(v: float) -> float:
    k = STEPS_PER_OCTAVE
    return 2.0 ** (math.ceil(math.log2(v) * k - 1e-9) / k)


class Scale:
    """The values that map to the bottom and the top of the ramp.

    Top: the view's peak, rounded up to a step of 2^(1/8). It rises as soon as the visible maximum exceeds it
    and falls only when the maximum drops two steps below it, so the strongest cell in view is always within
    the top ~16 % of the scale (the top one or two levels of the ramp).

    Floor: the typical heat cell of the view (the median non-empty cell), at most half the peak; cells at or
    below it are the ramp's first level. A field where every price holds some USD at risk (the synthetic
    model's estimate is never zero near price) would otherwise light up as a whole in proportion to its mean,
    and the levels that stand out of it — what a trader is looking for — would be a shade brighter at most.
    Capped at half the peak so a flat field is not stretched into stripes: a level needs at least twice the
    typical cell's USD to reach the top. Both move only by whole steps with hysteresis, so small changes in
    the data never recolour the whole map.
    """

    def __init__(self) -> None:
        self.value = 0.0
        self.floor = 0.0

    def update(self, vmax: float, typical: float = 0.0) -> bool:
        """Track ``vmax`` and the ``typical`` cell; True when either end moved (recolour the whole map)."""
        if not (vmax > 0 and math.isfinite(vmax)):
            return False
        changed = False
        k = STEPS_PER_OCTAVE
        if self.value <= 0 or vmax > self.value or vmax < self.value * 2.0 ** (-FALL_STEPS / k):
            new = _quantize(vmax)
            changed = new != self.value
            self.value = new
        want = min(typical, self.value * FLOOR_MAX_SHARE) if typical > 0 and math.isfinite(typical) else 0.0
        if want <= 0:
            changed |= self.floor != 0.0
            self.floor = 0.0
        elif self.floor <= 0 or abs(math.log2(want / self.floor)) * k > FALL_STEPS:
            new = min(_quantize(want), self.value * FLOOR_MAX_SHARE)
            changed |= new != self.floor
            self.floor = new
        if self.floor > self.value * FLOOR_MAX_SHARE:  # the top fell under the floor's cap
            self.floor = self.value * FLOOR_MAX_SHARE
            changed = True
        return changed


RECENT_SHARE = 0.25  # the newest quarter of the body's columns (and the live column) set the top of the ramp ...
OLD_PEAK_SHARE = 0.5  # ... unless an older peak is more than twice as strong: then half of it does


def view_top(body: np.ndarray, live: np.ndarray | None = None) -> float:
    """The value the top of the ramp should mean: the strongest cell of the newest quarter of the view.

    A trader reads the map from the right edge: which levels stand *now*. A level that was consumed an hour
    ago can be twice as large as anything left, and scaling to it would paint every level that still stands
    (the NEXT 1H clusters) mid-ramp. Older peaks above the top saturate: they stay the brightest colour, so
    nothing is hidden. Half the whole view's peak is the lower bound so a quiet present does not stretch
    noise into bright bands."""
    b = np.asarray(body, dtype=np.float32)
    whole = float(b.max()) if b.size else 0.0
    recent = 0.0
    if b.ndim == 2 and b.shape[1]:
        k = max(1, int(round(b.shape[1] * RECENT_SHARE)))
        recent = float(b[:, -k:].max())
    if live is not None and np.size(live):
        lv = float(np.max(live))
        recent = max(recent, lv)
        whole = max(whole, lv)
    return max(recent, OLD_PEAK_SHARE * whole)


def typical_cell(*layers: np.ndarray) -> float:
    """The median of the non-empty cells of the layers (the Scale's floor), 0 when all are empty."""
    parts = [np.asarray(a, dtype=np.float32).reshape(-1) for a in layers if a is not None and np.size(a)]
    if not parts:
        return 0.0
    v = np.concatenate(parts)
    v = v[v > 0]
    return float(np.percentile(v, FLOOR_QUANTILE)) if len(v) else 0.0


def level_of(values: np.ndarray, scale: float, n: int, gamma: float = GAMMA, floor: float = 0.0) -> np.ndarray:
    """Values → uint8 levels 0..n: ``ceil(n · ((value − floor)/(scale − floor))^gamma)``, any positive value
    at least 1 (a cell at or below the floor is the ramp's first level: present, dim)."""
    v = np.asarray(values, dtype=np.float32)
    if not scale > 0:
        return np.zeros(v.shape, dtype=np.uint8)
    floor = floor if 0 <= floor < scale else 0.0
    x = np.clip((v - np.float32(floor)) / np.float32(scale - floor), 0.0, 1.0)
    y = np.power(x, np.float32(gamma)) if gamma != 1.0 else x
    lv = np.ceil(y * n).astype(np.uint8)
    lv[v <= 0] = 0
    return np.minimum(lv, n)


def compose_levels(flow: np.ndarray, held: np.ndarray | None, scale: float, floor: float, held_scale: float,
                   held_floor: float, n: int, held_n: int) -> np.ndarray:
    """Cell codes for a heat layer in two parts: ``flow`` on the ramp (1..n) against ``scale``/``floor``, and the
    resting layer ``held`` (positions held for days) on its own ramp (n+1..n+held_n) against its own scale. A
    cell takes the hue of the part that holds more of its USD (the flow on a tie), at that part's level on its
    own scale: the hue says what the mass is, each part keeps its gradation, and neither saturates the other."""
    lf = level_of(flow, scale, n, floor=floor)
    if held is None or held_n <= 0 or not held_scale > 0:
        return lf
    lh = level_of(held, held_scale, held_n, floor=held_floor)
    show_held = (np.asarray(held, np.float32) > np.asarray(flow, np.float32)) & (lh > 0)
    return np.where(show_held, lh.astype(np.uint8) + np.uint8(n), lf).astype(np.uint8)

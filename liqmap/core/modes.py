"""The map's modes, one entry each: what a mode is called, its key, what it reads and how its grid is built.

Everything that lists or dispatches on modes reads this registry: the engine's grid builder (``MODES`` and
``spec(mode).build``), the background views (every mode of the asset on screen), the app's keys and labels,
the status bar, the settings' choices and ``liqmap --mode``. Adding a fifth mode is one :class:`ModeSpec`
in ``REGISTRY`` (plus its builder in ``liqmap.core.grids.modes`` when it draws something new).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .grids import modes as _g
from .grids.window import Window
from .params import GridParams
from .snapshot import MapGrid


@dataclass(frozen=True)
class GridInputs:
    """What a mode's builder gets for one view; the engine fills only what the mode's flags ask for."""

    asset: str
    tf: str
    win: Window
    trades: np.ndarray | None
    now: float
    params: GridParams
    venues: tuple[str, ...]
    liqs: np.ndarray | None = None  # real liquidations (``ModeSpec.liqs``)
    lo: np.ndarray | None = None  # the model's per-column long / short layers (``ModeSpec.model``)
    sh: np.ndarray | None = None
    levels: Any = None  # the model's current levels (``ModeSpec.levels``)
    exact_segments: np.ndarray | None = None  # exact positions' bands and levels now (``ModeSpec.exact``)
    exact_levels: Any = None


@dataclass(frozen=True)
class ModeSpec:
    name: str  # settings, views, snapshots
    key: str  # the app's key
    label: str  # status bar
    short: str  # the key's label in the footer
    build: Callable[[GridInputs], MapGrid]
    model: bool = True  # reads the model's per-column layers
    liqs: bool = False  # reads the real-liquidation tapes
    levels: bool = False  # reads the model's current levels (the forward profile)
    profile_strip: bool = False  # the app shows the forward profile at the right edge
    real_marks: bool = False  # the map marks real liquidations on top of the cells
    exact: bool = False  # reads the exact positions of a venue that publishes them (``core/positions.py``)


def _raw(i: GridInputs) -> MapGrid:
    return _g.build_raw(i.asset, i.tf, i.win, i.liqs, i.trades, now=i.now, half_life_s=i.params.raw_half_life_s,
                        venues=i.venues)


def _synthetic(i: GridInputs) -> MapGrid:
    return _g.build_synthetic(i.asset, i.tf, i.win, i.lo, i.sh, i.trades, venues=i.venues)


def _heatmap(i: GridInputs) -> MapGrid:
    return _g.build_heatmap(i.asset, i.tf, i.win, i.lo, i.sh, i.trades, params=i.params, venues=i.venues)


def _hybrid(i: GridInputs) -> MapGrid:
    return _g.build_hybrid(i.asset, i.tf, i.win, i.liqs, i.lo, i.sh, i.trades, i.levels, now=i.now,
                           params=i.params, venues=i.venues)


def _positions(i: GridInputs) -> MapGrid:
    return _g.build_positions(i.asset, i.tf, i.win, i.exact_segments, i.exact_levels, i.trades, now=i.now,
                              venues=i.venues)


REGISTRY: tuple[ModeSpec, ...] = (
    ModeSpec("raw", "1", "Raw", "Raw", _raw, model=False, liqs=True),
    ModeSpec("synthetic", "2", "Synthetic", "Synth", _synthetic),
    ModeSpec("heatmap", "3", "Synthetic Heatmap", "Synth HM", _heatmap),
    ModeSpec("hybrid", "4", "Hybrid", "Hybrid", _hybrid, liqs=True, levels=True, profile_strip=True,
             real_marks=True),
    # Hyperliquid's tracked wallets: exact, but a sample (the status bar says how many, what share of its OI)
    ModeSpec("positions", "5", "Positions (exact, HL)", "Exact", _positions, model=False, profile_strip=True,
             exact=True),
)

_BY_NAME = {m.name: m for m in REGISTRY}
MODES: tuple[str, ...] = tuple(m.name for m in REGISTRY)
MODE_KEYS: dict[str, str] = {m.key: m.name for m in REGISTRY}
MODE_LABEL: dict[str, str] = {m.name: m.label for m in REGISTRY}


def spec(mode: str) -> ModeSpec:
    try:
        return _BY_NAME[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})") from None

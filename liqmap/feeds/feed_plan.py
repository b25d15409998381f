"""What feeds a collector runs (docs/architecture.md §6 load budget): the kinds per group, which venues offer the
light ``depth`` kind, the focus set that gets full books, the watchdog timeout per connection, and ``Slot`` (one
feed of a venue: a group of kinds over a set of assets).

Separate from :mod:`.collector` because these are plain decisions from the config and the adapters, with no loop,
socket or task in them: ``liqmap doctor`` and tests read them without a running collector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptofeed.connection import AsyncConnection
from cryptofeed.connection_handler import ConnectionHandler

from .health import Health

FLOW_KINDS = ("liq", "trade", "oi")
BOOK_KINDS = ("book",)
LIGHT_KINDS = ("depth",)  # top-N book snapshots for the assets out of focus (when the adapter has them)


def light_depth_supported(venue: str, factory_kinds: Iterable[str] | None = None) -> bool:
    """Whether the venue's adapter offers the light ``depth`` kind (top-N snapshots). Adapters declare
    what they can parse in ``SUPPORTED_KINDS`` (default: liqmap.feeds.venues.ALL_KINDS)."""
    if factory_kinds is not None:
        return "depth" in factory_kinds
    try:
        from .venues import ALL_KINDS, VENUE_CLASSES
    except ImportError:
        return False
    cls = VENUE_CLASSES.get(venue)
    return cls is not None and "depth" in getattr(cls, "SUPPORTED_KINDS", ALL_KINDS)


def flow_kinds(venue: str, factory_kinds: Iterable[str] | None = None) -> tuple[str, ...]:
    """``FLOW_KINDS`` the venue's adapter parses (Hyperliquid publishes no liquidations: trades and OI)."""
    if factory_kinds is None:
        try:
            from .venues import VENUE_CLASSES
        except ImportError:
            return FLOW_KINDS
        cls = VENUE_CLASSES.get(venue)
        factory_kinds = getattr(cls, "SUPPORTED_KINDS", FLOW_KINDS) if cls is not None else FLOW_KINDS
    return tuple(k for k in FLOW_KINDS if k in factory_kinds)


def feeds_setting(cfg: dict | None, key: str, default: Any) -> Any:
    return ((cfg or {}).get("feeds") or {}).get(key, default)


def focus_set(cfg: dict | None, assets: Iterable[str], on_screen: Iterable[str] | str | None = None) -> list[str]:
    """The assets that get full books: those on screen plus ``universe.focus_extra``, in universe order."""
    cfg = cfg or {}
    if on_screen is None:
        on_screen = [((cfg.get("app") or {}).get("asset")) or "BTC"]
    elif isinstance(on_screen, str):
        on_screen = [on_screen]
    want = {a.upper() for a in on_screen} | {a.upper() for a in (cfg.get("universe") or {}).get("focus_extra", [])}
    return [a for a in assets if a in want]


def watchdog_for(cfg: dict | None, kinds: Iterable[str]) -> float:
    """The watchdog timeout for a connection carrying ``kinds``: the smallest over them (a connection
    with trades on it should never be silent for long, even if it also carries liquidations)."""
    default = float(feeds_setting(cfg, "watchdog_seconds", 30.0))
    by_kind = feeds_setting(cfg, "watchdog_by_kind", {}) or {}
    vals = [float(by_kind.get(k) or 0.0) or default for k in kinds]
    return min(vals) if vals else default


@dataclass
class Slot:
    """One feed the collector runs for a venue: a group of kinds over a set of assets."""

    venue: str
    group: str  # "flow" | "book"
    kinds: tuple[str, ...]
    book_assets: tuple[str, ...] | None = None
    feed: Any = None
    handlers: list[ConnectionHandler] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    opened_at: dict[str, float] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    receipt: float = 0.0  # receipt time of the frame being parsed (for lag)
    build_error: str = ""
    stopped: bool = False
    health: Health | None = None  # this feed's own record (the venue's sums all its feeds)

    def connections(self) -> list[AsyncConnection]:
        return [h.conn for h in self.handlers]

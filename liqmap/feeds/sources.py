"""Frame sources: what feeds the runtime (``liqmap/runtime.py``) its market data.

A source owns where frames come from and nothing else: the runtime builds the market, the one ingest path,
the book board and the engine, and asks the source to ``attach`` to them and then ``run`` until stopped.

- ``LiveSource``     the venue collectors on their websockets (``collector.py``), parsing on the socket with
                     the same feed classes and handing rows, books and health to the runtime's ``Ingest``
- ``ReplaySource``   a recording, paced by receipt time (``replay.py``)
- ``DemoFeed``       the simulated market with its pre-roll (``demo/feed.py``)

The message bus's ``BusSource`` (``liqmap/bus/source.py``) is one more, on a NATS JetStream server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from liqmap.core.assets import Asset, universe


@runtime_checkable
class FrameSource(Protocol):
    label: str  # LIVE / REPLAY / DEMO: what the status bar and the engine's snapshots say
    assets: dict[str, Asset]  # contract specs the parsers convert with
    status: str  # one phrase for a status line ("" when all is well)

    def clock(self) -> float: ...  # the map's clock: wall time, a recording's, the simulation's

    def tiers(self) -> Callable | None: ...  # the engine's margin-tier source (None: bundled tables)

    def attach(self, rt) -> None: ...  # built into a runtime (its market, ingest, engine exist)

    async def run(self, rt, stop: asyncio.Event) -> None: ...  # frames into rt.ingest until stop (or the end)

    async def close(self) -> None: ...

    def health(self) -> dict | None: ...  # per-venue health, or None: the ingest's records say it

    def on_view(self, asset: str) -> None: ...  # the user put ``asset`` on screen


def metadata_tiers(metadata, assets):
    """The engine's ``tiers`` source over the feeds' contract metadata: ``fn(asset, venue, price)`` → the
    venue's public ladder as (floor, cap, mmr, max_leverage, cum) rows in USD (OKX's ladder in contracts
    converted with its contract value at ``price``; BitMEX's risk limit likewise), or None where the venue
    publishes none (Deribit) or nothing is cached yet. Binance is left to the engine's bundled table.
    Read on each call, so models built after a background refresh use the refreshed ladders."""
    by_name = universe(list(assets))

    def tiers(asset: str, venue: str, price: float):
        a = by_name.get(asset)
        if a is None or venue == "binance":
            return None
        return metadata.tier_rows(venue, a, price)

    return tiers


class LiveSource:
    """The venues' websockets and REST polls through the collector.

    ``metadata``: contract specs and public margin ladders (``feeds/metadata.py``; the cache applies at once,
    stale venues refresh in the background; without it OKX sizes would be off by the contract value) — the
    same object feeds the engine's margin tiers. ``recorder`` receives every raw frame (``liqmap record``);
    ``plan`` and ``endpoints`` as for ``Collector`` (``liqmap doctor``: one feed per venue and channel);
    ``backfill``: Binance's, Bybit's and OKX's history through the models at start (``feeds/backfill``).
    """

    label = "LIVE"

    def __init__(self, cfg: dict[str, Any], assets=None, venues=None, metadata: Any = None, recorder: Any = None,
                 endpoints: dict | None = None, plan=None, focus=None, backfill: bool = True,
                 open_timeout: float = 10.0) -> None:
        self.cfg = cfg
        names = assets if assets is not None else list(cfg["universe"]["assets"])
        self.assets: dict[str, Asset] = dict(names) if isinstance(names, dict) else universe(list(names))
        self.venues = tuple(venues) if venues is not None else None
        self.metadata = metadata
        self.recorder = recorder
        self.endpoints = endpoints
        self.plan = plan
        self.focus = list(focus) if focus is not None else None
        self.backfill = backfill
        self.open_timeout = open_timeout
        self.collector = None
        self.backfill_result: dict[str, str] | None = None  # asset → "ok (N rows)" or why it has no history
        self.status = ""

    def clock(self) -> float:
        return time.time()

    def tiers(self):
        return metadata_tiers(self.metadata, list(self.assets)) if self.metadata is not None else None

    def attach(self, rt) -> None:
        from .collector import Collector

        # Built here (not in run) so front ends can read its health and move its focus from the start.
        self.collector = Collector(self.cfg, rt.market, self.assets, self.venues or rt.venues,
                                   metadata=self.metadata, recorder=self.recorder, endpoints=self.endpoints,
                                   plan=self.plan, open_timeout=self.open_timeout,
                                   focus=self.focus if self.focus is not None else [rt.screen_asset],
                                   ingest=rt.ingest)

    def health(self) -> dict | None:
        return self.collector.health() if self.collector is not None else None

    def on_view(self, asset: str) -> None:
        # The full L2 book subscription follows the asset on screen (the collector adds the configured focus
        # extras and debounces rapid switches; safe from any thread).
        if self.collector is not None:
            self.collector.set_focus(asset)

    async def _backfill(self, rt) -> None:
        """Binance's, Bybit's and OKX's OI history and 1-minute bars (those in the venue set) through the synthetic
        models, screen asset first."""
        from .backfill import BACKFILL_VENUES, backfill

        venues = [v for v in BACKFILL_VENUES if v in rt.venues]
        if not venues:
            self.backfill_result = {}
            return
        self.backfill_result = await backfill(rt.engine, self.cfg, rt.assets, venues, first=rt.screen_asset,
                                              now=rt.clock, focus=lambda: rt.screen_asset)

    async def run(self, rt, stop: asyncio.Event) -> None:
        bf = asyncio.ensure_future(self._backfill(rt)) if self.backfill and rt.engine is not None else None
        await self.collector.start()
        try:
            await stop.wait()
        finally:
            await self.collector.stop()
            if bf is not None:
                if not bf.done():
                    bf.cancel()
                await asyncio.gather(bf, return_exceptions=True)

    async def close(self) -> None:
        if self.collector is not None:
            await self.collector.stop()


def __getattr__(name: str):
    # The other two sources live beside what they read; importing them here lazily keeps this module light.
    if name == "ReplaySource":
        from .replay import ReplaySource

        return ReplaySource
    if name == "DemoFeed":
        from .demo.feed import DemoFeed

        return DemoFeed
    raise AttributeError(name)

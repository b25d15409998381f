"""The demo market: a simulated five-venue market behind ``liqmap --demo``, and forecast-skill ground truth.

It emits each venue's own raw frames (docs/venues.md §2), so the demo exercises exactly the parsing
path of live data: only the socket differs. Modules:

- ``market.py``    one asset's traders, positions (true liquidation prices), order-flow price, cascades, walls
- ``contracts.py`` per-venue units, lots, ticks, max leverage, margin brackets, liquidation-price formulas
- ``books.py``     each venue's L2 ladder around the simulated price (sweeps, churn, walls)
- ``venues.py``    the frame emitters per venue (sequencing, checksums, publishing limits)
- ``source.py``    ``DemoSource``: stepping, receipt times, paced/unpaced iteration
- ``truth.py``     open positions' true liquidation prices and the log of every real liquidation
- ``preroll.py``   the app's pre-roll: history written through the parsers, the asset on screen first

Feeding it into a ``liqmap.core.market.Market`` (what ``--demo``, ``collect --demo`` and the benchmark do)::

    from liqmap.core.market import Market
    from liqmap.feeds.demo import DemoSource, make_parsers, pump

    src = DemoSource(cfg, assets=["BTC", "ETH"], seed=7, speed=1.0)   # cfg: liqmap.config.load() or None
    market = Market(list(src.assets), clock=src.now)                 # simulated clock: speed > 1 is fine
    parsers = make_parsers(src, market.add, book_sink=None, cfg=cfg)  # one real FrameParser per venue
    await pump(src, parsers)                                          # paced, forever (cancel to stop)
    # or, unpaced: await pump(src, parsers, seconds=600)  → ten simulated minutes as fast as possible

Frames are ``(receipt_ts, venue, conn, raw)`` tuples, the same shape as a recording row, so
``liqmap record --demo OUT`` can write them as they come and replay reads them back. ``DemoFeeder`` wraps
all of this for the app (``run()`` / ``stop()``). Ground truth: ``src.truth(asset)`` and
``src.liquidations(asset)``.
"""

from __future__ import annotations

import asyncio
import time

from .source import DemoSource, Frame
from .truth import LIQ_LOG_DTYPE, TRUTH_POS_DTYPE

__all__ = ["DemoSource", "DemoFeeder", "Frame", "make_parsers", "pump", "TRUTH_POS_DTYPE", "LIQ_LOG_DTYPE"]


def make_parsers(source: DemoSource, sink, book_sink=None, cfg: dict | None = None) -> dict:
    """One real venue ``FrameParser`` per venue, for the source's assets, writing into ``sink``."""
    from liqmap.feeds.parser import FrameParser
    from liqmap.feeds.venues import VENUE_CLASSES

    return {v: FrameParser(v, source.assets, sink, book_sink, cfg) for v in VENUE_CLASSES}


async def pump(source: DemoSource, parsers: dict, seconds: float | None = None, stop: asyncio.Event | None = None,
               tap=None) -> int:
    """Feed the source's frames through ``parsers`` (venue → FrameParser). Paced and endless when
    ``seconds`` is None; otherwise ``seconds`` of simulated time unpaced. ``tap(frame)`` sees every frame
    (a recorder). Returns the number of frames fed."""
    async def one(f) -> None:
        if tap is not None:
            tap(f)
        p = parsers.get(f[1])
        if p is not None:
            await p.feed(f[3], f[0], f[2])

    n = 0
    if seconds is not None:
        for f in source.run_for(seconds):
            await one(f)
            n += 1
            if n % 2000 == 0:
                await asyncio.sleep(0)
        return n
    async for f in source.frames():
        await one(f)
        n += 1
        if stop is not None and stop.is_set():
            break
    return n


class DemoFeeder:
    """The demo market writing into an app's ``Market`` (what ``liqmap --demo`` runs).

    ``books`` holds the parsed venue books per asset (``books_for(asset)`` for an engine's books
    provider). Because simulated time can run faster than the wall clock (``speed``), the market's clock
    is advanced to the simulated clock so fresh demo events are never rejected as "from the future".
    """

    def __init__(self, cfg: dict | None, market, seed: int | None = None, speed: float | None = None,
                 assets=None, focus=None) -> None:
        names = list(assets or getattr(market, "assets", None) or (cfg or {}).get("demo", {}).get("assets") or [])
        self.source = DemoSource(cfg, assets=names or None, seed=seed, speed=speed, focus=focus)
        self.market = market
        self.books: dict[str, dict] = {}
        self.parsers = make_parsers(self.source, market.add, self._on_book, cfg)
        self._stop = asyncio.Event()
        src = self.source
        market.clock = lambda: max(src.now(), time.time())

    def _on_book(self, asset: str, venue: str, book) -> None:
        self.books.setdefault(asset, {})[venue] = book

    def books_for(self, asset: str) -> dict:
        return self.books.get(asset, {})

    def set_focus(self, names) -> None:
        self.source.set_focus(names)

    def parse_errors(self) -> int:
        return sum(sum(p.errors.values()) for p in self.parsers.values())

    async def run(self) -> None:
        await pump(self.source, self.parsers, stop=self._stop)

    def stop(self) -> None:
        self._stop.set()


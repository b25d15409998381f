"""The demo market: a simulated five-venue market behind ``liqmap --demo``, and forecast-skill ground truth.

It emits each venue's own raw frames (docs/venues.md §2), so the demo exercises exactly the parsing
path of live data: only the socket differs. Modules:

- ``market.py``    one asset's traders, positions (true liquidation prices), order-flow price, cascades, walls
- ``contracts.py`` per-venue units, lots, ticks, max leverage, margin brackets, liquidation-price formulas
- ``books.py``     each venue's L2 ladder around the simulated price (sweeps, churn, walls)
- ``venues.py``    the frame emitters per venue (sequencing, checksums, publishing limits)
- ``hyperliquid.py`` Hyperliquid's emitter (in BitMEX's former slot) and ``demo_wallet``, the traders' wallets
- ``source.py``    ``DemoSource``: stepping, receipt times, paced/unpaced iteration
- ``truth.py``     open positions' true liquidation prices and the log of every real liquidation
- ``preroll.py``   the app's pre-roll: history written through the ingest path, the asset on screen first
- ``feed.py``      ``DemoFeed``: the runtime's frame source over all of it, and ``pump``

Feeding it into a ``liqmap.core.market.Market`` goes through the one ingest path (``liqmap/feeds/ingest.py``);
``feed.py``'s ``DemoFeed`` is the runtime's frame source (``liqmap --demo``, ``collect --demo``)::

    from liqmap.core.market import Market
    from liqmap.feeds.demo import DemoSource, pump
    from liqmap.feeds.ingest import Ingest

    src = DemoSource(cfg, assets=["BTC", "ETH"], seed=7, speed=1.0)   # cfg: liqmap.config.load() or None
    market = Market(list(src.assets), clock=src.now)                 # simulated clock: speed > 1 is fine
    ingest = Ingest(cfg, market, src.assets)                         # one real FrameParser per venue
    await pump(src, ingest, seconds=600)                             # ten simulated minutes, unpaced

Frames are ``liqmap.feeds.frame.Frame`` (receipt_ts, venue, conn, raw), the same type as a recording row, so
``liqmap record --demo OUT`` writes them as they come and replay reads them back. Ground truth:
``src.truth(asset)`` and ``src.liquidations(asset)``.
"""

from __future__ import annotations

from ..frame import Frame
from .feed import DemoFeed, pump
from .source import DemoSource
from .truth import LIQ_LOG_DTYPE, TRUTH_POS_DTYPE

__all__ = ["DemoSource", "DemoFeed", "Frame", "make_parsers", "pump", "TRUTH_POS_DTYPE", "LIQ_LOG_DTYPE"]


def make_parsers(source: DemoSource, sink, book_sink=None, cfg: dict | None = None) -> dict:
    """One real venue ``FrameParser`` per venue, for the source's assets, writing into ``sink`` (tests and
    benchmarks that look at one parser's rows; the app goes through ``liqmap.feeds.ingest.Ingest``)."""
    from liqmap.feeds.parser import FrameParser
    from liqmap.feeds.venues import VENUE_CLASSES

    return {v: FrameParser(v, source.assets, sink, book_sink, cfg) for v in VENUE_CLASSES}

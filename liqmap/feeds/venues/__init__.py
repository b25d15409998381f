"""The five venue adapters: cryptofeed Feed subclasses that emit liqmap's normalized rows.

``make_feed`` builds a live, configured feed (for the collector); ``liqmap.feeds.parser.FrameParser``
drives the same classes offline. ``symbol_for`` / ``asset_for`` map between liqmap's asset names and
each venue's symbols.
"""

from __future__ import annotations

import importlib

from liqmap.core.assets import Asset, default_universe

from .base import ALL_KINDS, SUPPORTED_KINDS, BookSink, FrameError, Sink, VenueFeed

_MODULES = {
    "binance": ("binance", "BinanceFeed"),
    "bybit": ("bybit", "BybitFeed"),
    "okx": ("okx", "OkxFeed"),
    "bitmex": ("bitmex", "BitmexFeed"),
    "deribit": ("deribit", "DeribitFeed"),
}


def _load() -> dict[str, type]:
    out: dict[str, type] = {}
    for venue, (mod, cls) in _MODULES.items():
        try:
            m = importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError:
            continue
        out[venue] = getattr(m, cls)
    return out


VENUE_CLASSES: dict[str, type] = _load()


def make_feed(
    venue: str,
    assets: dict[str, Asset],
    channels: tuple[str, ...] | list[str] = ALL_KINDS,
    sink: Sink | None = None,
    book_sink: BookSink | None = None,
    cfg: dict | None = None,
    endpoints: dict[str, str] | None = None,
    book_assets: list[str] | tuple[str, ...] | None = None,
    callbacks: dict | None = None,
    **feed_kwargs,
) -> VenueFeed:
    """A configured live feed for ``venue``.

    ``channels`` are liqmap kinds ("liq", "trade", "oi", "book", "depth"); ``book_assets`` limits the L2
    book — or, for "depth", the light top-N snapshots (``feeds.channels.<venue>_light_depth``) — to those
    assets (None = all). "book" and "depth" need separate feeds (they share cryptofeed's L2 channel). ``endpoints`` overrides ``feeds.endpoints`` for this venue, keyed without
    the venue prefix (binance: market/public/rest; others: ws). Extra keyword arguments go to
    cryptofeed's Feed (``retries``, ``timeout``, ``timeout_interval``, ...). Add the result to a
    cryptofeed ``FeedHandler`` or call ``feed.start(loop)``.
    """
    try:
        cls = VENUE_CLASSES[venue]
    except KeyError:
        raise ValueError(f"unknown venue {venue!r} (have {', '.join(VENUE_CLASSES)})") from None
    return cls(assets, sink=sink, book_sink=book_sink, cfg=cfg, endpoints=endpoints, channels=tuple(channels),
               book_assets=book_assets, callbacks=callbacks, **feed_kwargs)


def symbol_for(venue: str, asset: str | Asset, assets: dict[str, Asset] | None = None) -> str | None:
    """The venue's symbol for an asset (None when the venue does not list it)."""
    if isinstance(asset, Asset):
        a = asset
    else:
        a = (assets or default_universe()).get(asset.upper())
        if a is None:
            return None
    vm = a.markets.get(venue)
    return vm.symbol if vm else None


def asset_for(venue: str, symbol: str, assets: dict[str, Asset] | None = None) -> str | None:
    """The liqmap asset name for a venue symbol (None when it is not in the universe)."""
    for name, a in (assets or default_universe()).items():
        vm = a.markets.get(venue)
        if vm is not None and vm.symbol == symbol:
            return name
    return None


__all__ = ["VENUE_CLASSES", "make_feed", "symbol_for", "asset_for", "VenueFeed", "FrameError", "ALL_KINDS",
           "SUPPORTED_KINDS"]

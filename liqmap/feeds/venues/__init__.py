"""The venue adapters: one module per venue, each a cryptofeed Feed subclass that emits liqmap's normalized
rows and declares everything about its venue on its class (``base.VenueFeed``: name, id, labels, endpoints,
channels, ccxt id, limits).

The registry is derived from the modules: every module of this package (but the shared ``base`` and
``normalize``) that defines a ``VenueFeed`` subclass with a ``venue`` name is a venue, ordered by its id.
Adding a venue is one module here (plus its tests, and its emitter in the demo market) and the core's part
of it as one declared entry (``liqmap.core.venues.TABLE``: its id, symbol rule, live or not, label and short
name — the core computes with those and never imports the feeds). At build the registry checks the modules against that
table (the same venues, each declared id the core's, which stored rows carry) and the number of venues
against what the synthetic model can pack (``model_venue_limit()``: 8).

The tables the recording reader needs are derived here from the modules, never restated: ``CRYPTOFEED_IDS``
(a cryptofeed recording's feed id → venue: the cryptofeed class's ``id``) and ``HOST_VENUES`` (a recorded URL's
host → venue: the declared endpoints' domains). The names people read (``VENUE_LABEL``, ``VENUE_SHORT``) are
the core table's, so the UI has them without importing cryptofeed.

``make_feed`` builds a live, configured feed (for the collector), the venue class over its cryptofeed class;
``liqmap.feeds.parser.FrameParser`` drives the same classes offline (``offline=True``: over ``_bases.OfflineFeed``,
with no cryptofeed import). ``symbol_for`` / ``asset_for`` map between liqmap's asset names and
each venue's symbols.
"""

from __future__ import annotations

import importlib
import pkgutil
from urllib.parse import urlsplit

from liqmap.core.assets import Asset, default_universe
from liqmap.core.events import VENUE_ID
from liqmap.core.venues import VENUE_LABEL, VENUE_SHORT  # noqa: F401 - the names, with the registry

from .base import ALL_KINDS, SUPPORTED_KINDS, BookSink, FrameError, Sink, VenueFeed

_SHARED = {"base", "normalize"}


class VenueLimitError(ValueError):
    """More venues than the model can pack, or a venue whose id is not the core's."""


def model_venue_limit() -> int:
    """How many venues the synthetic model can tell apart: a level's source code (flow or prior × venue ×
    side) must fit its history keys' code bits, and a consumed level records its venues as bits of one
    unsigned field (``liqmap/core/synthetic.py``; read here, never changed)."""
    from liqmap.core.synthetic import MAX_VENUES

    return MAX_VENUES


def check_venues(classes: dict[str, type], limit: int | None = None, ids: dict[str, int] | None = None) -> None:
    """Raise ``VenueLimitError`` when ``classes`` cannot all be told apart by the model, a class's declared
    ``VID`` is not the core's id for its venue (rows, stored history and recordings carry the id), or a venue
    has a module but no core entry (or a core entry but no module)."""
    limit = model_venue_limit() if limit is None else limit
    ids = VENUE_ID if ids is None else ids
    if len(classes) > limit or len(ids) > limit:
        raise VenueLimitError(f"{max(len(classes), len(ids))} venues, but the synthetic model packs at most "
                              f"{limit} (liqmap/core/synthetic.py: history key code bits, consumed venue bits)")
    for name, cls in classes.items():
        if ids.get(name) != cls.VID:
            raise VenueLimitError(f"venue {name!r} declares id {cls.VID}, the core's table "
                                  f"(liqmap.core.venues.TABLE) has {ids.get(name)}")
    missing = [n for n in ids if n not in classes]
    if missing:
        raise VenueLimitError(f"venue {missing[0]!r} is in the core's table (liqmap.core.venues.TABLE) but has "
                              f"no module in liqmap/feeds/venues/")


def _load() -> dict[str, type]:
    found: list[type] = []
    for mod in pkgutil.iter_modules(__path__):
        if mod.name in _SHARED or mod.name.startswith("_"):
            continue
        try:
            m = importlib.import_module(f"{__name__}.{mod.name}")
        except ModuleNotFoundError:
            continue
        for obj in vars(m).values():
            if (isinstance(obj, type) and issubclass(obj, VenueFeed) and obj is not VenueFeed
                    and obj.__module__ == m.__name__ and obj.venue):
                found.append(obj)
    out = {cls.venue: cls for cls in sorted(found, key=lambda c: c.VID)}
    check_venues(out)
    return out


VENUE_CLASSES: dict[str, type] = _load()


def _domain(url: str) -> str:
    """The registered domain of an endpoint URL (``wss://fstream.binance.com/market`` → ``binance.com``)."""
    host = urlsplit(url).hostname or ""
    return ".".join(host.split(".")[-2:])


# Recordings made by other collectors: a cryptofeed file's feed id (the cryptofeed class's ``id``; liqmap's own
# Hyperliquid Feed has one too), and the host of a recorded URL (the declared endpoints' domains).
CRYPTOFEED_IDS: dict[str, str] = {cls.id: name for name, cls in VENUE_CLASSES.items()}
HOST_VENUES: tuple[tuple[str, str], ...] = tuple(dict.fromkeys(
    (_domain(url), name) for name, cls in VENUE_CLASSES.items() for url in cls.ENDPOINTS.values()))


def venue_endpoints(venue: str, cfg: dict | None = None) -> dict[str, str]:
    """The venue's endpoint URLs (declared, with ``feeds.endpoints`` over them), keyed without its prefix."""
    return VENUE_CLASSES[venue].configured("endpoints", cfg)


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
    offline: bool = False,
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
    # A kind the venue has no channel for is dropped (Hyperliquid publishes no liquidations); an unknown
    # kind still raises in the feed.
    channels = tuple(k for k in channels if k in cls.SUPPORTED_KINDS or k not in SUPPORTED_KINDS)
    from ._bases import live_class, offline_class

    cls = offline_class(cls) if offline else live_class(cls)
    return cls(assets, sink=sink, book_sink=book_sink, cfg=cfg, endpoints=endpoints, channels=channels,
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


__all__ = ["VENUE_CLASSES", "VENUE_LABEL", "VENUE_SHORT", "CRYPTOFEED_IDS", "HOST_VENUES", "make_feed", "symbol_for", "asset_for", "venue_endpoints", "check_venues",
           "model_venue_limit", "VenueLimitError", "VenueFeed", "FrameError", "ALL_KINDS", "SUPPORTED_KINDS"]

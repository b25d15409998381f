"""The two bases a venue class (``base.VenueFeed`` subclass) is composed over.

- live (``live_class``): the venue's cryptofeed class (``CRYPTOFEED``) behind ``CryptofeedGlue``; cryptofeed
  keeps the connections, retries, watchdog and symbol map, exactly as when the venue classes subclassed it;
- offline (``offline_class``): ``OfflineFeed``, for parsing frames that did not come off a socket (the demo
  market, replays, ``liqmap.feeds.parser.FrameParser``). It plans the connections cryptofeed's generic
  ``Feed.connect`` would open (address, subscription, split at the endpoint's limit) as plain objects, so the
  subscribe coroutines run against stand-ins as before, and never imports cryptofeed: that import (aiohttp,
  requests, websockets, every cryptofeed exchange) was a third of the demo's CPU to its first frame.

The venue's own code (``subscribe``, ``connect`` where it has one, every parser) is the same in both: it asks
the base for endpoints and connections (``ws_endpoint``, ``rest_endpoint``, ``ws_connection``, ``http_poll``)
instead of naming cryptofeed's classes. tests/test_startup_imports.py holds the offline plan equal to
cryptofeed's (subscriptions, connections, the messages subscribe sends) for every venue.
"""

from __future__ import annotations

import importlib

from .base import L2_BOOK, LIQUIDATIONS, OPEN_INTEREST, PERPETUAL, TRADES

_LIVE: dict[type, type] = {}
_OFFLINE: dict[type, type] = {}


def live_class(cls: type) -> type:
    """``cls`` over its cryptofeed class: a feed that connects (the collector, doctor)."""
    got = _LIVE.get(cls)
    if got is None:
        from cryptofeed.exceptions import MissingSequenceNumber

        module, _, name = cls.CRYPTOFEED.partition(":")
        base = getattr(importlib.import_module(module), name)
        if not isinstance(base, type):  # a venue cryptofeed lacks builds its Feed class on first use
            base = base()
        got = _LIVE[cls] = type(cls.__name__, (cls, CryptofeedGlue, base),
                                {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                 "RESYNC": MissingSequenceNumber})
    return got


def offline_class(cls: type) -> type:
    """``cls`` over ``OfflineFeed``: a feed that parses frames handed to it and never connects."""
    got = _OFFLINE.get(cls)
    if got is None:
        got = _OFFLINE[cls] = type(cls.__name__, (cls, OfflineFeed),
                                   {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return got


class CryptofeedGlue:
    """Between the venue class and its cryptofeed class: the symbol map seeded with ours before cryptofeed's
    constructor reads it (so constructing a feed never makes a REST call), and cryptofeed's endpoint and
    connection objects for what the venue asks."""

    def __init__(self, **kwargs) -> None:
        self._seed_symbols()
        super().__init__(**kwargs)

    def _seed_symbols(self) -> None:
        from cryptofeed.symbols import Symbols

        norm: dict[str, str] = {}
        info: dict[str, dict] = {"tick_size": {}, "instrument_type": {}}
        ours = set(self.std_of)
        if Symbols.populated(self.id):
            n0, i0 = Symbols.get(self.id)
            # keep other feeds' entries, but not a different name for one of our venue symbols
            norm.update({std: sym for std, sym in n0.items() if sym not in ours})
            for k, v in i0.items():
                info.setdefault(k, {}).update(v)
        for sym, std in self.std_of.items():
            norm[std] = sym
            info["instrument_type"][std] = PERPETUAL
        Symbols.set(self.id, norm, info)

    def ws_endpoint(self, address: str, limit: int | None, options: dict):
        from cryptofeed.connection import WebsocketEndpoint

        return WebsocketEndpoint(address, limit=limit, options=options)

    def rest_endpoint(self, address: str, instruments: str, **routes):
        from cryptofeed.connection import RestEndpoint, Routes

        return RestEndpoint(address, routes=Routes(instruments, **routes))

    def ws_connection(self, address: str, subscription: dict, options: dict):
        from cryptofeed.connection import WSAsyncConn

        return WSAsyncConn(address, self.id, subscription=subscription, **options)

    def http_poll(self, addresses: list[str], delay: float, sleep: float):
        from cryptofeed.connection import HTTPPoll

        return HTTPPoll(addresses, self.id, delay=delay, sleep=sleep, proxy=self.http_proxy)


class Endpoint:
    """A websocket endpoint as cryptofeed's ``WebsocketEndpoint`` holds it (no filters: liqmap's have none)."""

    def __init__(self, address: str, limit: int | None = None, options: dict | None = None) -> None:
        self.address = address
        self.limit = limit
        self.options = {"ping_interval": 10, "ping_timeout": None, "max_size": None, "max_queue": None,
                        **(options or {})}


class RestRoutes:
    """A REST endpoint's routes as cryptofeed's ``RestEndpoint.route`` gives them (base address + path)."""

    def __init__(self, address: str, instruments: str, **routes: str) -> None:
        self.address = address
        self.routes = {"instruments": instruments, **routes}

    def route(self, name: str) -> str:
        return self.address + self.routes[name]


class PlannedConnection:
    """A connection cryptofeed would open: where to (a URL, or a REST poll's URLs) and what it carries
    (exchange channel → exchange symbols). ``FrameParser`` puts a recording stand-in in its place."""

    def __init__(self, address, subscription: dict) -> None:
        self.address = address
        self.subscription = subscription


class OfflineFeed:
    """The base for parsing without cryptofeed: the attributes and the connection plan cryptofeed's ``Feed``
    gives the venue code, for frames handed to ``message_handler`` / ``parse``."""

    http_proxy = None
    allow_empty_subscriptions = False

    def __init__(self, subscription: dict | None = None, callbacks: dict | None = None, **_connection_options) -> None:
        # our symbols both ways (cryptofeed's maps, seeded with ours on the live side)
        self.exchange_symbol_mapping = dict(self.std_of)
        self.normalized_symbol_mapping = {std: sym for sym, std in self.std_of.items()}
        # exchange channel → exchange symbols, as cryptofeed's Feed builds it
        self.subscription: dict[str, set] = {}
        for channel, symbols in (subscription or {}).items():
            chan = self.std_channel_to_exchange(channel)
            self.subscription.setdefault(chan, set()).update(self.normalized_symbol_mapping[s] for s in symbols)
        self.callbacks: dict[str, list] = {k: [] for k in (TRADES, LIQUIDATIONS, OPEN_INTEREST, L2_BOOK)}
        for kind, cb in (callbacks or {}).items():
            self.callbacks[kind] = cb if isinstance(cb, list) else [cb]

    @classmethod
    def std_channel_to_exchange(cls, channel: str) -> str:
        try:
            return cls.CF_CHANNELS[channel]
        except KeyError:
            raise KeyError(f"{channel} is not supported on {cls.id}") from None

    def ws_endpoint(self, address: str, limit: int | None, options: dict) -> Endpoint:
        return Endpoint(address, limit, options)

    def rest_endpoint(self, address: str, instruments: str, **routes) -> RestRoutes:
        return RestRoutes(address, instruments, **routes)

    def ws_connection(self, address: str, subscription: dict, options: dict) -> PlannedConnection:
        return PlannedConnection(address, subscription)

    def http_poll(self, addresses: list[str], delay: float, sleep: float) -> PlannedConnection:
        return PlannedConnection(addresses, {})

    def _connect_rest(self) -> list:
        return []

    def connect(self) -> list:
        """cryptofeed's generic ``Feed.connect``: per websocket endpoint, the subscription in connections of
        at most the endpoint's limit of (channel, symbol) pairs; an endpoint with nothing to carry is left out."""
        ret = self._connect_rest()
        for ep in self.websocket_endpoints:
            sub = {chan: list(symbols) for chan, symbols in self.subscription.items()}
            count = sum(map(len, sub.values()))
            if not self.allow_empty_subscriptions and (not sub or count == 0):
                continue
            if ep.limit and count > ep.limit:
                part: dict[str, list] = {}
                for chan, symbols in sub.items():
                    for s in symbols:
                        part.setdefault(chan, []).append(s)
                        if sum(map(len, part.values())) == ep.limit:
                            ret.append(self._planned(ep.address, part))
                            part = {}
                if sum(map(len, part.values())) > 0:
                    ret.append(self._planned(ep.address, part))
            else:
                ret.append(self._planned(ep.address, sub))
        return ret

    def _planned(self, address: str, subscription: dict) -> tuple:
        return (PlannedConnection(address, subscription), self.subscribe, self.message_handler, self.authenticate)

    async def subscribe(self, conn) -> None:
        return None

    async def authenticate(self, conn) -> None:
        return None

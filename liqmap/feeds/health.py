"""Per-venue health: what the status bar, ``liqmap doctor`` and the replay report say about a venue.

A venue is ``connected`` when at least one of its connections is open and a frame arrived within
``stale_seconds`` (or it connected less than that ago), ``stale`` when connections are open but silent
for longer, ``down`` when none is open (never connected, all dropped, or its feed task died). Lag is
receipt time minus the exchange's own timestamp of the newest event in a frame — cryptofeed's reader
never drops frames, so when parsing falls behind, this is the only place the backlog shows.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger("liqmap.feeds")

CONNECTED, STALE, DOWN, CONNECTING = "connected", "stale", "down", "connecting"
LAGGING = "lagging"  # data arrives, but runs late (a backlog on our side or the venue's): the map is behind

# Lags beyond this are clock or replay artefacts (an old recording), not backlog; they are counted
# apart so one bogus exchange timestamp cannot poison the average.
MAX_PLAUSIBLE_LAG_S = 3600.0


@dataclass
class Health:
    venue: str
    stale_seconds: float = 10.0
    lagging_seconds: float = 2.0  # smoothed lag beyond this reads "lagging" (a flood once ran 14 s late as "connected")
    ewma_alpha: float = 0.05
    clock: Any = time.time

    frames: int = 0  # websocket + REST frames received
    rest_frames: int = 0
    events: Counter = field(default_factory=Counter)  # normalized rows delivered, per kind
    parse_errors: int = 0
    errors_by_kind: Counter = field(default_factory=Counter)
    connects: int = 0  # successful websocket opens (the first per connection is not a reconnect)
    reconnects: int = 0
    stalls: int = 0  # connections the watchdog closed for silence
    failed_connects: int = 0
    open_connections: int = 0
    last_frame: float | None = None  # receipt time of the newest frame
    connected_since: float | None = None
    created: float | None = None  # when the record was made (a frame source's stand-in for its connection)
    lag_last: float | None = None
    lag_ewma: float | None = None
    lag_max: float | None = None
    implausible_lags: int = 0
    last_error: str = ""
    dead: bool = False  # a feed task ended for good (retries exhausted) and is not being restarted
    log_errors: bool = True  # log the first malformed frame of each kind (off for per-feed records)
    _seen_conns: set = field(default_factory=set)
    _logged_kinds: set = field(default_factory=set)

    # -- events from the collector ------------------------------------------------------------------
    def on_frame(self, receipt_ts: float, rest: bool = False) -> None:
        self.frames += 1
        if rest:
            self.rest_frames += 1
        # the newest receipt, not the latest call: the demo's pre-roll writes hours-old history while the live
        # stream runs, and every venue read "stale, 2h" under a live market
        if self.last_frame is None or receipt_ts > self.last_frame:
            self.last_frame = receipt_ts

    def on_connect(self, conn_id: str, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.connects += 1
        if conn_id in self._seen_conns:
            self.reconnects += 1
        self._seen_conns.add(conn_id)
        if self.open_connections == 0:
            self.connected_since = now
        self.dead = False

    def on_connect_failed(self, error: str) -> None:
        self.failed_connects += 1
        self.last_error = error

    def on_lag(self, lag: float) -> None:
        if not (-MAX_PLAUSIBLE_LAG_S < lag < MAX_PLAUSIBLE_LAG_S):
            self.implausible_lags += 1
            return
        self.lag_last = lag
        self.lag_ewma = lag if self.lag_ewma is None else self.lag_ewma + self.ewma_alpha * (lag - self.lag_ewma)
        if self.lag_max is None or lag > self.lag_max:
            self.lag_max = lag

    def on_events(self, kind: str, n: int) -> None:
        if n:
            self.events[kind] += n

    def on_parse_error(self, kind: str, detail: str = "", raw: Any = None) -> bool:
        """Count a malformed frame; log the first of each kind. Returns True when it was logged."""
        self.parse_errors += 1
        self.errors_by_kind[kind] += 1
        self.last_error = f"{kind}: {detail}" if detail else kind
        if self.log_errors and kind not in self._logged_kinds:
            self._logged_kinds.add(kind)
            sample = raw[:200] if isinstance(raw, (str, bytes)) else raw
            LOG.warning("%s: malformed frame (%s) dropped: %s; frame: %r", self.venue, kind, detail, sample)
            return True
        return False

    def on_stall(self, error: str) -> None:
        self.stalls += 1
        self.last_error = error

    def on_dead(self, error: str) -> None:
        self.dead = True
        self.last_error = error

    # -- reading ------------------------------------------------------------------------------------
    def state(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        if self.open_connections <= 0 and not self.dead and self.connects == 0 and self.failed_connects == 0:
            return CONNECTING  # nothing tried yet (start-up): not "down", which would alarm for no reason
        if self.open_connections <= 0 or self.dead:
            return DOWN
        ref = self.last_frame if self.last_frame is not None else self.connected_since
        if ref is None:
            # a frame source's record with nothing received yet (the demo's Hyperliquid while the pre-roll's
            # history runs): it is starting, not stale — until it has been silent for as long as a stale venue
            if self.created is not None and now - self.created <= self.stale_seconds:
                return CONNECTING
            return STALE
        if now - ref > self.stale_seconds:
            return STALE
        if self.lag_ewma is not None and self.lag_ewma > self.lagging_seconds:
            return LAGGING
        return CONNECTED

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the newest frame (None before the first)."""
        if self.last_frame is None:
            return None
        now = self.clock() if now is None else now
        return max(0.0, now - self.last_frame)

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        age = self.age(now)
        return {
            "venue": self.venue,
            "state": self.state(now),
            "last_message_age": None if age is None else round(age, 3),
            "lag_last": None if self.lag_last is None else round(self.lag_last, 4),
            "lag_ewma": None if self.lag_ewma is None else round(self.lag_ewma, 4),
            "lag_max": None if self.lag_max is None else round(self.lag_max, 4),
            "frames": self.frames,
            "rest_frames": self.rest_frames,
            "events": dict(self.events),
            "parse_errors": self.parse_errors,
            "errors_by_kind": dict(self.errors_by_kind),
            "connects": self.connects,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
            "failed_connects": self.failed_connects,
            "open_connections": self.open_connections,
            "last_error": self.last_error,
        }


class HealthFan:
    """The same updates to several ``Health`` records at once (a venue's and one of its feeds')."""

    __slots__ = ("targets",)

    def __init__(self, *targets: Health) -> None:
        object.__setattr__(self, "targets", tuple(t for t in targets if t is not None))

    # the per-frame updates, written out: ``__getattr__`` would build a closure on every call
    def on_frame(self, receipt_ts: float, rest: bool = False) -> None:
        for t in self.targets:
            t.on_frame(receipt_ts, rest)

    def on_events(self, kind: str, n: int) -> None:
        for t in self.targets:
            t.on_events(kind, n)

    def on_lag(self, lag: float) -> None:
        for t in self.targets:
            t.on_lag(lag)

    def __getattr__(self, name: str):
        first = getattr(self.targets[0], name)
        if not callable(first):
            return first

        def call(*args, **kwargs):
            out = None
            for t in self.targets:
                r = getattr(t, name)(*args, **kwargs)
                out = r if out is None else (out or r)
            return out

        return call

    def __setattr__(self, name: str, value) -> None:
        for t in self.targets:
            setattr(t, name, value)


# ------------------------------------------------------------------------------------ failure causes

DNS, TLS, REFUSED, TIMEOUT, HTTP, CLOSED, UNREACHABLE, OTHER = (
    "DNS", "TLS", "refused", "timeout", "HTTP", "closed", "unreachable", "error")


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        inner = getattr(exc, "os_error", None)  # aiohttp.ClientConnectorError keeps the OSError here
        if isinstance(inner, BaseException) and id(inner) not in seen:
            yield inner
            seen.add(id(inner))
        exc = exc.__cause__ or exc.__context__


def classify_error(exc: BaseException | None) -> tuple[str, str]:
    """(category, one-line text) for a connection failure: DNS, TLS, refused, timeout, HTTP (a status
    at the websocket upgrade or REST call), closed, unreachable, or error."""
    if exc is None:
        return OTHER, "unknown error"
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:200] if str(exc) else type(exc).__name__
    for e in _chain(exc):
        name = type(e).__name__
        if isinstance(e, socket.gaierror) or name == "ClientConnectorDNSError":
            return DNS, text
        if isinstance(e, (ssl.SSLError, ssl.CertificateError)) or name in (
                "ClientConnectorCertificateError", "ClientSSLError", "ClientConnectorSSLError"):
            return TLS, text
        if isinstance(e, ConnectionRefusedError):
            return REFUSED, text
        if isinstance(e, (asyncio.TimeoutError, TimeoutError, socket.timeout)):
            return TIMEOUT, text
        if name == "InvalidStatus":  # websockets: the server answered the upgrade with an HTTP error
            status = getattr(getattr(e, "response", None), "status_code", "?")
            return HTTP, f"{status} at the websocket upgrade"
        if name in ("ClientResponseError",):
            return HTTP, f"{getattr(e, 'status', '?')} {getattr(e, 'message', '')}".strip()
        if name.startswith("ConnectionClosed") or isinstance(e, (ConnectionResetError, ConnectionAbortedError)):
            return CLOSED, text
        if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return UNREACHABLE, text
    return OTHER, text

"""Hyperliquid's exact positions: wallets discovered from the trades, polled within a share of the rate limit.

Facts relied on (docs/hyperliquid.md, checked 2026-12-05): every ``trades`` frame carries both wallets in
``users``; ``POST /info {"type": "clearinghouseState", "user": …}`` answers a wallet's positions (``szi`` signed,
``entryPx``, ``leverage`` an object ``{type, value}``, ``liquidationPx`` possibly null, ``marginUsed``; numbers as
decimal strings); the REST budget is 1200 weight per minute per IP and this request weighs 2; the over-limit
answer is not documented (third parties report HTTP 429).

- :class:`WalletRanker` — discovery from the venue parser's ``on_users(coin, users, usd, ts)`` hook. A wallet is
  *due* when it was never polled, traded since its last poll (and that poll is ``positions.min_refresh_seconds``
  old), or its last poll is older than ``positions.refresh_seconds``; among due wallets the largest notional goes first (its position's value once
  polled, the USD it was seen trading before), the newest trade next. At most ``positions.max_wallets`` are
  tracked: past the cap the lowest ranked is forgotten (memory stays bounded). A wallet whose newest trade is
  in an asset whose history is still being written (``held``: the demo's pre-roll, a live back-fill) waits until
  that asset is released: its answer would be the present while its trades still to come are the past, so a
  position closed later in that history stayed in the book, stamped as polled now, until its refresh (the demo's
  panel read ``exact: 70 wallets, 100 % of HL OI`` at launch, then 33 wallets, 39 % once those were refreshed).
- :class:`RateBudget` — a sliding 60 s window of request weight: at most ``budget_share`` × 1200.
- :class:`PositionPoller` — one request at a time on one session (``Transport``), each answer parsed
  (:func:`parse_clearinghouse`) into the core's ``PositionBook``; a 429 pauses every request for a backoff that
  doubles up to ``positions.backoff_max_seconds`` (or the server's ``Retry-After``); a malformed answer is
  counted with one line and dropped. Liquidations the book detects go to the market as liquidation rows.
- :class:`PriceTape` — per-second low/high of the accepted trades (a runtime row tap), so the book can tell a
  position that vanished at its liquidation price from one that was closed.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Protocol

import orjson

from liqmap.core.positions import ExactPosition, PositionBook

log = logging.getLogger(__name__)

VENUE = "hyperliquid"
LIMIT_PER_MINUTE = 1200  # REST weight per minute per IP (docs/hyperliquid.md §4)
CLEARINGHOUSE_WEIGHT = 2
WINDOW_S = 60.0
HELD_RETRY_S = 1.0  # a wallet of an asset whose history is being written is looked at again this much later


class MalformedAnswer(ValueError):
    """An answer that is not a clearinghouseState in the documented shape."""


# ---------------------------------------------------------------------------------------------- parsing
def _num(v: Any, what: str, *, allow_null: bool = False) -> float:
    """A decimal string or a number (the docs' TypeScript says number, every example sends strings)."""
    if v is None:
        if allow_null:
            return math.nan
        raise MalformedAnswer(f"{what} missing")
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise MalformedAnswer(f"{what} is {type(v).__name__}")
    if isinstance(v, str) and allow_null and v.strip().lower() == "nan":
        return math.nan  # the SDK's older OpenAPI example sends "NaN" for "no liquidation price"
    try:
        x = float(v)
    except ValueError:
        raise MalformedAnswer(f"{what} {v!r} is not a number") from None
    if not math.isfinite(x):
        raise MalformedAnswer(f"{what} {v!r} is not finite")
    return x


def coin_asset(coin: str, assets) -> tuple[str, float] | None:
    """liqmap's asset and the price multiplier for a Hyperliquid coin: ``kPEPE`` is 1000 PEPE (as Binance's
    1000-lots), so prices divide and sizes multiply by 1000. None: not in the universe."""
    if coin in assets:
        return coin, 1.0
    if len(coin) > 1 and coin[0] == "k" and coin[1:] in assets:
        return coin[1:], 1000.0
    return None


def parse_clearinghouse(body: bytes | str | dict, wallet: str, ts: float, assets) -> list[ExactPosition]:
    """A ``clearinghouseState`` answer as positions in liqmap's assets and units (coins outside the universe are
    left out). Raises :class:`MalformedAnswer` for anything not in the documented shape."""
    try:
        d = orjson.loads(body) if isinstance(body, (bytes, str)) else body
    except orjson.JSONDecodeError as e:
        raise MalformedAnswer(f"not JSON: {e}") from None
    if not isinstance(d, dict) or not isinstance(d.get("assetPositions"), list):
        raise MalformedAnswer("no assetPositions list")
    out = []
    for i, ap in enumerate(d["assetPositions"]):
        p = ap.get("position") if isinstance(ap, dict) else None
        if not isinstance(p, dict) or not isinstance(p.get("coin"), str):
            raise MalformedAnswer(f"assetPositions[{i}] has no position with a coin")
        hit = coin_asset(p["coin"], assets)
        szi = _num(p.get("szi"), f"{p['coin']} szi")
        if hit is None or szi == 0:
            continue
        asset, mult = hit
        entry = _num(p.get("entryPx"), f"{p['coin']} entryPx")
        lev = p.get("leverage")
        if not isinstance(lev, dict):
            raise MalformedAnswer(f"{p['coin']} leverage is not an object")
        lev_value = _num(lev.get("value"), f"{p['coin']} leverage.value")
        liq = _num(p.get("liquidationPx"), f"{p['coin']} liquidationPx", allow_null=True)
        margin = _num(p.get("marginUsed"), f"{p['coin']} marginUsed")
        if entry <= 0 or lev_value <= 0 or margin < 0 or (liq == liq and liq < 0):
            raise MalformedAnswer(f"{p['coin']}: implausible entry/leverage/margin/liquidation price")
        out.append(ExactPosition(wallet, asset, szi * mult, entry / mult, lev_value, lev.get("type") != "isolated",
                                 liq / mult if liq > 0 else math.nan, margin, ts))
    return out


# ---------------------------------------------------------------------------------------------- discovery
@dataclass
class _Wallet:
    address: str
    notional: float = 0.0  # USD: the positions' value once polled, the USD seen trading before
    last_trade: float = -math.inf
    last_poll: float | None = None
    polled_notional: bool = False
    version: int = 0  # bumped whenever its rank or due-ness changes (stale queue entries are skipped)
    coin: str = ""  # the coin of its newest trade (a held asset's history defers its poll)


class WalletRanker:
    """Wallets seen trading, ranked for polling (see the module docstring).

    A due wallet sits in a heap keyed by (notional, newest trade), largest first; a wallet not due yet waits in
    a second heap keyed by the time it becomes due (its refresh, or ``min_refresh_s`` after its last poll when
    it traded since: a market maker trading every second must not take every request). Entries are
    invalidated by a version number rather than removed, so every operation is O(log n): Hyperliquid's trade
    stream names hundreds of wallets a second in a busy market, and a scan of every wallet per request cost
    more CPU than the HTTP request itself (benchmarks/bench_positions.py)."""

    def __init__(self, max_wallets: int = 2000, refresh_s: float = 120.0,
                 on_forget: Callable[[str], None] | None = None, min_refresh_s: float = 15.0) -> None:
        self.max_wallets = max(1, int(max_wallets))
        # eviction runs in batches: at most this many wallets above the cap, then back down to the cap
        self.slack = max(16, self.max_wallets // 10)
        self.refresh_s = float(refresh_s)
        self.min_refresh_s = min(float(min_refresh_s), self.refresh_s)
        self.on_forget = on_forget
        self.wallets: dict[str, _Wallet] = {}
        self._heap: list[tuple[float, float, str, int]] = []
        self._later: list[tuple[float, str, int]] = []  # (due at, address, version)
        self.stats = {"seen": 0, "forgotten": 0, "bad_address": 0}

    def _due_at(self, w: _Wallet) -> float:
        if w.last_poll is None:
            return -math.inf
        if w.last_trade > w.last_poll:
            return w.last_poll + self.min_refresh_s
        return w.last_poll + self.refresh_s

    def _queue(self, w: _Wallet, now: float) -> None:
        """(Re)file ``w``: in the ranked heap if due at ``now``, else by the time it becomes due."""
        w.version += 1
        at = self._due_at(w)
        if at > now:
            heapq.heappush(self._later, (at, w.address, w.version))
        else:
            heapq.heappush(self._heap, (-w.notional, -w.last_trade, w.address, w.version))
        if len(self._heap) + len(self._later) > 4 * len(self.wallets) + 64:  # mostly stale entries: rebuild
            self._heap = [(-x.notional, -x.last_trade, x.address, x.version) for x in self.wallets.values()]
            heapq.heapify(self._heap)  # every wallet once; those not due are refiled by ``next``
            self._later = []

    def on_users(self, coin: str, users, usd: float, ts: float) -> None:
        """The venue parser's hook: one trade's two wallets and its USD value."""
        for u in users or ():
            if not (isinstance(u, str) and len(u) == 42 and u.startswith("0x")):
                self.stats["bad_address"] += 1
                continue
            w = self.wallets.get(u)
            if w is None:
                w = self.wallets[u] = _Wallet(u)
                self.stats["seen"] += 1
            if not w.polled_notional:
                w.notional += float(usd) if usd == usd and usd > 0 else 0.0
            newer = float(ts) > w.last_trade
            if newer or not w.coin:
                w.coin = coin
            w.last_trade = max(w.last_trade, float(ts))
            if w.last_poll is None or newer:
                self._queue(w, w.last_trade)
        if len(self.wallets) > self.max_wallets + self.slack:
            self._evict(len(self.wallets) - self.max_wallets)

    def _evict(self, n: int) -> None:
        """Forget the ``n`` lowest ranked wallets (smallest notional, oldest trade)."""
        for w in heapq.nsmallest(n, self.wallets.values(), key=lambda w: (w.notional, w.last_trade)):
            del self.wallets[w.address]
            self.stats["forgotten"] += 1
            if self.on_forget is not None:
                self.on_forget(w.address)

    def due(self, w: _Wallet, now: float) -> bool:
        return self._due_at(w) <= now

    def next(self, now: float, held: Callable[[str], bool] | None = None) -> str | None:
        """The due wallet to poll next: largest notional first, newest trade next; None if none is due.
        ``held(coin)``: the coin's history is still being written; its wallets wait (``HELD_RETRY_S``)."""
        while self._later and self._later[0][0] <= now:
            _, addr, version = heapq.heappop(self._later)
            w = self.wallets.get(addr)
            if w is not None and w.version == version:
                w.version += 1
                heapq.heappush(self._heap, (-w.notional, -w.last_trade, addr, w.version))
        while self._heap:
            _, _, addr, version = self._heap[0]
            w = self.wallets.get(addr)
            if w is not None and w.version == version:
                if self.due(w, now):
                    if held is None or not w.coin or not held(w.coin):
                        return addr
                    heapq.heappop(self._heap)  # its asset's past is still arriving: ask once it is in
                    w.version += 1
                    heapq.heappush(self._later, (now + HELD_RETRY_S, addr, w.version))
                    continue
                heapq.heappop(self._heap)
                self._queue(w, now)  # not yet (polled a moment ago): back at its due time
                continue
            heapq.heappop(self._heap)  # stale: the wallet moved, was polled or forgotten
        return None

    def polled(self, address: str, now: float, positions: Iterable[ExactPosition] | None) -> None:
        """An answer came (``positions`` None: no usable answer; the wallet waits for its refresh)."""
        w = self.wallets.get(address)
        if w is None:
            return
        w.last_poll = now
        if positions is not None:
            w.notional = sum(abs(p.size) * p.entry for p in positions)
            w.polled_notional = True
        self._queue(w, now)

    def requeue(self, address: str) -> None:
        """Ask again soon (a 429 or a network error: the wallet is still due)."""
        w = self.wallets.get(address)
        if w is not None:
            w.version += 1
            heapq.heappush(self._heap, (-w.notional, -w.last_trade, address, w.version))


# ---------------------------------------------------------------------------------------------- budget
class RateBudget:
    """At most ``limit`` request weight in any ``window`` seconds (a sliding log of what was sent)."""

    def __init__(self, limit: float, window: float = WINDOW_S) -> None:
        self.limit = float(limit)
        self.window = float(window)
        self._sent: deque[tuple[float, float]] = deque()
        self._used = 0.0

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self.window:
            self._used -= self._sent.popleft()[1]

    def used(self, now: float) -> float:
        self._trim(now)
        return self._used

    def wait(self, weight: float, now: float) -> float:
        """Seconds until ``weight`` fits (0: now)."""
        self._trim(now)
        if self._used + weight <= self.limit + 1e-9:
            return 0.0
        need = self._used + weight - self.limit
        freed = 0.0
        for t, w in self._sent:
            freed += w
            if freed >= need - 1e-9:
                return max(t + self.window - now, 1e-3)
        return self.window

    def take(self, weight: float, now: float) -> None:
        self._sent.append((now, weight))
        self._used += weight


# ---------------------------------------------------------------------------------------------- prices
class PriceTape:
    """Per asset, per second: the lowest and highest accepted trade price of the last ``keep_s`` seconds."""

    def __init__(self, venue_id: int | None = None, keep_s: float = 3600.0) -> None:
        self.venue_id = venue_id  # None: every venue's trades
        self.keep_s = float(keep_s)
        self._t: dict[str, list[int]] = {}
        self._lo: dict[str, list[float]] = {}
        self._hi: dict[str, list[float]] = {}

    def tap(self, kind: str, asset: str, rows) -> None:
        """A runtime row tap: ``(kind, asset, rows)`` of every batch the market accepts."""
        if kind != "trade" or not len(rows):
            return
        if self.venue_id is not None:
            mine = rows[rows["venue"] == self.venue_id]
            rows = mine if len(mine) else rows  # no own trades (yet): the other venues' prices
        ts, px = rows["ts"], rows["price"]
        t, lo, hi = self._t.setdefault(asset, []), self._lo.setdefault(asset, []), self._hi.setdefault(asset, [])
        for s, p in zip((ts // 1).astype("i8").tolist(), px.tolist()):
            if t and s == t[-1]:
                if p < lo[-1]:
                    lo[-1] = p
                if p > hi[-1]:
                    hi[-1] = p
            elif not t or s > t[-1]:
                t.append(s)
                lo.append(p)
                hi.append(p)
            else:  # late row: fold into its second if kept
                i = bisect.bisect_left(t, s)
                if i < len(t) and t[i] == s:
                    lo[i], hi[i] = min(lo[i], p), max(hi[i], p)
        if len(t) > 2 * self.keep_s:
            cut = bisect.bisect_left(t, t[-1] - self.keep_s)
            del t[:cut], lo[:cut], hi[:cut]

    def range(self, asset: str, t0: float, t1: float) -> tuple[float, float] | None:
        t = self._t.get(asset)
        if not t:
            return None
        i, j = bisect.bisect_left(t, int(t0 // 1)), bisect.bisect_right(t, int(t1 // 1))
        if i >= j:
            return None
        return min(self._lo[asset][i:j]), max(self._hi[asset][i:j])


# ---------------------------------------------------------------------------------------------- transport
class Transport(Protocol):
    async def post(self, payload: dict) -> tuple[int, bytes, dict]: ...  # (HTTP status, body, headers)

    async def close(self) -> None: ...


class HttpTransport:
    """``POST /info`` on one aiohttp session (one connection reused; never more than one request at a time)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = float(timeout_s)
        self._session = None

    async def post(self, payload: dict) -> tuple[int, bytes, dict]:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                                                  connector=aiohttp.TCPConnector(limit=1))
        async with self._session.post(self.url, data=orjson.dumps(payload),
                                      headers={"Content-Type": "application/json"}) as r:
            return r.status, await r.read(), dict(r.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# ---------------------------------------------------------------------------------------------- poller
@dataclass
class PollerStats:
    requests: int = 0
    answers: int = 0
    rate_limited: int = 0
    malformed: int = 0
    errors: int = 0
    weight_sent: float = 0.0
    last_error: str = ""
    backoff_until: float = 0.0
    detected: int = 0
    extra: dict = field(default_factory=dict)


class PositionPoller:
    """Polls ``clearinghouseState`` for the ranked wallets within the rate budget (module docstring)."""

    def __init__(self, book: PositionBook, transport: Transport, assets, *, budget_share: float = 0.5,
                 limit_per_minute: float = LIMIT_PER_MINUTE, weight: float = CLEARINGHOUSE_WEIGHT,
                 max_wallets: int = 2000, refresh_s: float = 120.0, min_refresh_s: float = 15.0,
                 backoff_s: float = 2.0,
                 backoff_max_s: float = 120.0, idle_s: float = 0.5,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 price_range=None, on_liquidations: Callable[[list], None] | None = None,
                 recorder: Callable[[float, dict, float, int, bytes], None] | None = None,
                 held: Callable[[str], bool] | None = None) -> None:
        self.book = book
        # ``held(asset)``: the asset's history is still being written (the engine's ``held``); its wallets wait
        self.held = held
        # ``recorder(t, request, sent, status, body)`` sees every answer as received (``liqmap record``)
        self.recorder = recorder
        self.transport = transport
        self.assets = assets
        self.weight = float(weight)
        self.budget = RateBudget(float(budget_share) * float(limit_per_minute))
        self.clock = clock
        self.sleep = sleep
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.idle_s = float(idle_s)
        self.price_range = price_range
        self.on_liquidations = on_liquidations
        self.ranker = WalletRanker(max_wallets, refresh_s, on_forget=lambda w: book.forget(w, self.clock()),
                                   min_refresh_s=min_refresh_s)
        self.stats = PollerStats()
        self._backoff = 0.0
        self._logged_malformed = 0

    def _held_coin(self, coin: str) -> bool:
        hit = coin_asset(coin, self.assets)
        return hit is not None and bool(self.held(hit[0]))

    # the venue parser's hook
    def on_users(self, coin: str, users, usd: float, ts: float) -> None:
        self.ranker.on_users(coin, users, usd, ts)

    async def poll_once(self) -> bool:
        """One request if a wallet is due and the budget allows it now; False when there was nothing to do."""
        now = self.clock()
        if now < self.stats.backoff_until:
            return False
        wallet = self.ranker.next(now, self._held_coin if self.held is not None else None)
        if wallet is None or self.budget.wait(self.weight, now) > 0:
            return False
        self.budget.take(self.weight, now)
        self.stats.requests += 1
        self.stats.weight_sent += self.weight
        payload = {"type": "clearinghouseState", "user": wallet}
        try:
            status, body, headers = await self.transport.post(payload)
        except Exception as e:  # network trouble: counted, the wallet waits for its refresh  # noqa: BLE001
            self.stats.errors += 1
            self.stats.last_error = f"{type(e).__name__}: {e}"
            self.ranker.requeue(wallet)  # still due once the pause is over
            self._pause(now, None)
            return True
        t = self.clock()
        if self.recorder is not None:  # ``liqmap record``: the answer as received, before anything reads it
            self.recorder(t, payload, now, status, body)
        self.handle(wallet, t, status, body, headers)
        return True

    def handle(self, wallet: str | None, t: float, status: int, body, headers: dict | None = None) -> None:
        """One ``clearinghouseState`` answer received at ``t``: the live poll's, or a recording's in replay
        (``feeds/replay.py``), so both reach the book by the same steps. ``wallet`` None: a recorded answer
        whose request is unreadable (counted as malformed, dropped)."""
        if status == 429:
            self.stats.rate_limited += 1
            self._pause(t, headers.get("Retry-After") if headers else None)
            if wallet is not None:
                self.ranker.requeue(wallet)  # the wallet stays due: it is asked again after the pause
            return
        if status != 200:
            self.stats.errors += 1
            self.stats.last_error = f"HTTP {status}"
            if wallet is not None:
                self.ranker.polled(wallet, t, None)
            return
        self._backoff = 0.0
        try:
            if wallet is None:
                raise MalformedAnswer("no wallet in the recorded request")
            positions = parse_clearinghouse(body, wallet, t, self.assets)
        except MalformedAnswer as e:
            self.stats.malformed += 1
            self.stats.last_error = f"malformed clearinghouseState for {(wallet or '?')[:10]}…: {e}"
            if self._logged_malformed < 5:  # one line each, not a flood
                log.warning("hyperliquid positions: %s (dropped)", self.stats.last_error)
                self._logged_malformed += 1
            if wallet is not None:
                self.ranker.polled(wallet, t, None)
            return
        self.stats.answers += 1
        self.ranker.polled(wallet, t, positions)
        found = self.book.apply(wallet, positions, t, self.price_range)
        if found:
            self.stats.detected += len(found)
            if self.on_liquidations is not None:
                self.on_liquidations(found)

    def _pause(self, now: float, retry_after) -> None:
        self._backoff = min(self.backoff_max_s, max(self.backoff_s, 2 * self._backoff))
        pause = self._backoff
        try:
            if retry_after is not None:
                pause = min(self.backoff_max_s, max(pause, float(retry_after)))
        except ValueError:
            pass
        self.stats.backoff_until = now + pause

    def next_wait(self) -> float:
        """How long to sleep before trying again: the pause, the budget, or a short idle."""
        now = self.clock()
        if now < self.stats.backoff_until:
            return self.stats.backoff_until - now
        return max(min(self.budget.wait(self.weight, now), WINDOW_S), 0.0) or self.idle_s

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                if not await self.poll_once():
                    await self.sleep(min(self.next_wait(), 0.5))  # short naps: a stop is seen at once
                else:
                    await self.sleep(0)
        finally:
            await self.transport.close()

    def status(self) -> str:
        s = self.stats
        part = (f"HL positions: {self.book.wallets} wallets polled, {len(self.ranker.wallets)} known, "
                f"{s.requests} requests")
        if s.rate_limited:
            part += f", {s.rate_limited}× 429"
        if s.malformed:
            part += f", {s.malformed} malformed"
        if s.errors:
            part += f", {s.errors} errors"
        return part


# ---------------------------------------------------------------------------------------------- runtime
class HLPositions:
    """The Positions layer's moving parts in one runtime: the book, the price tape, the poller; the poller's
    transport comes from the source (live: Hyperliquid's ``/info``; the demo: its simulated clearinghouse)."""

    def __init__(self, rt, transport: Transport | None, cfg: dict, recorder=None) -> None:
        """``transport`` None: a recording's answers are replayed (``replay``) and nothing is polled.
        ``recorder``: a ``RecordingWriter`` that gets every answer as received (``liqmap record``)."""
        from liqmap.core.events import VENUE_ID

        p = cfg["positions"]
        self.rt = rt
        self.replayed = {"answers": 0, "other_requests": 0}
        self.url = info_url(rt.source, cfg)
        self.book = PositionBook(tolerance_pct=float(p["liquidation_tolerance_pct"]))
        self.venue_id = VENUE_ID.get(VENUE)
        self.tape = PriceTape(self.venue_id)
        self.poller = PositionPoller(
            self.book, transport, set(rt.assets), budget_share=float(p["budget_share"]),
            max_wallets=int(p["max_wallets"]), refresh_s=float(p["refresh_seconds"]),
            min_refresh_s=float(p["min_refresh_seconds"]),
            backoff_s=float(p["backoff_seconds"]), backoff_max_s=float(p["backoff_max_seconds"]),
            clock=rt.clock, price_range=self.tape.range, on_liquidations=self._liquidations,
            recorder=self._recorder(recorder), held=rt.engine.held if rt.engine is not None else None)
        rt.row_taps.append(self.tape.tap)
        if rt.engine is not None:
            rt.engine.attach_positions(self.book, VENUE, float(p["accuracy_every_seconds"]))
        self._module_hook = False
        self._attach_hook(rt)

    def _attach_hook(self, rt) -> None:
        """Hand the wallet hook to Hyperliquid's trade parser: the ingest's own feed instance (demo, replay) and,
        for live collectors' feeds (built elsewhere), the venue module's hook."""
        from .sources import LiveSource

        try:
            from .venues import hyperliquid as hl
        except ImportError:  # no Hyperliquid adapter: no trades, no wallets
            return
        parser = rt.ingest.parser(VENUE)
        feed = getattr(parser, "venue_feed", None)
        if feed is not None:
            feed.on_users = self.on_users
        if isinstance(rt.source, LiveSource):
            hl.on_users = self.on_users
            self._module_hook = True

    def _recorder(self, writer):
        if writer is None or not hasattr(writer, "answer"):
            return None

        def record(t: float, request: dict, sent: float, status: int, body) -> None:
            writer.answer(t, VENUE, self.url, request, sent, status, body)

        return record

    def replay(self, ans) -> None:
        """A recorded answer (``feeds.recording.InfoAnswer``) into the book by the live poll's own steps
        (``PositionPoller.handle``), after the rows before it reached the market: live, the poll runs between
        batches the ingest has flushed, so the price tape that tells a liquidation from a close has seen them."""
        if not (isinstance(ans.request, dict) and ans.request.get("type") == "clearinghouseState"):
            if ans.request is None:  # unreadable request: the poller counts it malformed
                self.replayed["answers"] += 1
                self.rt.ingest.flush()
                self.poller.handle(None, ans.t, ans.status, ans.raw)
            else:
                self.replayed["other_requests"] += 1
            return
        self.replayed["answers"] += 1
        self.rt.ingest.flush()
        self.poller.handle(ans.wallet, ans.t, ans.status, ans.raw)

    def report(self) -> dict:
        """What the replay report says about the positions answers (``docs/replay-report.md``)."""
        s = self.poller.stats
        return {"answers": self.replayed["answers"], "applied": s.answers, "malformed": s.malformed,
                "errors": s.errors, "rate_limited": s.rate_limited, "other_requests": self.replayed["other_requests"],
                "wallets": self.book.wallets, "detected_liquidations": s.detected}

    def detach(self) -> None:
        if self._module_hook:
            from .venues import hyperliquid as hl

            if hl.on_users == self.on_users:
                hl.on_users = None
            self._module_hook = False

    def on_users(self, coin: str, users, usd: float, ts: float) -> None:
        """The Hyperliquid trade parser's hook (``coin`` is Hyperliquid's name; the ranking needs only wallets)."""
        self.poller.on_users(coin, users, usd, ts)

    def _liquidations(self, found: list) -> None:
        """Detected liquidations into the market through the one ingest path (Raw and Hybrid show them)."""
        if self.venue_id is None:
            return
        by_asset: dict[str, list] = {}
        for d in found:
            by_asset.setdefault(d.asset, []).append(d)
        for asset, ds in by_asset.items():
            self.rt.ingest.add("liq", asset, self.book.liquidation_rows(ds, self.venue_id), venue=VENUE)

    async def run(self, stop: asyncio.Event) -> None:
        if self.poller.transport is None:  # a replay: the recording's answers come through ``replay``
            return
        try:
            await self.poller.run(stop)
        finally:
            self.detach()


def transport_for(source, cfg: dict) -> Transport | None:
    """Where the source's positions come from: the demo's simulated clearinghouse, Hyperliquid's ``/info`` for
    a live source; None for anything else (the bus: no wallet is polled there)."""
    from .demo.feed import DemoFeed
    from .sources import LiveSource

    if isinstance(source, DemoFeed):
        from .demo.clearinghouse import DemoClearinghouse

        return DemoClearinghouse(source.demo, VENUE)
    if isinstance(source, LiveSource):
        p = cfg["positions"]
        return HttpTransport(info_url(source, cfg), float(p["timeout_seconds"]))
    return None


def info_url(source, cfg: dict) -> str:
    """Where ``/info`` is: the source's endpoint override for the venue (``liqmap doctor``, loopback tests)
    before ``positions.info_url``."""
    own = ((getattr(source, "endpoints", None) or {}).get(VENUE) or {}).get("info")
    return str(own or cfg["positions"]["info_url"])


def make_positions(rt, recorder=None) -> HLPositions | None:
    """The runtime's Positions layer, or None (disabled, Hyperliquid not among the venues, or a source without
    positions). It needs the engine, except to record (``recorder``: answers go to the recording). A replay's
    layer polls nothing: the recording's answers reach its book (``HLPositions.replay``)."""
    from .replay import ReplaySource

    cfg = rt.cfg
    p = cfg.get("positions") or {}
    if not p.get("enabled", False) or VENUE not in rt.venues or (rt.engine is None and recorder is None):
        return None
    if isinstance(rt.source, ReplaySource):
        return HLPositions(rt, None, cfg)
    transport = transport_for(rt.source, cfg)
    if transport is None:
        return None
    return HLPositions(rt, transport, cfg, recorder)

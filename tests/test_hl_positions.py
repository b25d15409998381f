"""Hyperliquid's exact positions (liqmap/feeds/hl_positions.py) against a loopback HTTP server answering
``POST /info`` in Hyperliquid's shapes: the documented and recorded clearinghouseState answers, 429s, malformed
answers, a wallet whose position vanishes at its liquidation price, and a burst of 500 new wallets that must
never push the request weight past the budget in any 60 s window (counted on the server, on a controllable
clock: nothing here depends on how fast the machine is)."""

import asyncio
import math
from pathlib import Path

import numpy as np
import orjson
import pytest
from aiohttp import web

from liqmap.core.events import TRADE_DTYPE
from liqmap.core.positions import PositionBook
from liqmap.feeds.hl_positions import (HttpTransport, MalformedAnswer, PositionPoller, PriceTape, RateBudget,
                                       WalletRanker, parse_clearinghouse)

DATA = Path(__file__).parent / "data" / "hyperliquid"
ASSETS = {"BTC", "ETH", "PEPE", "SOL"}


def wallet(i: int) -> str:
    return "0x" + f"{i:040x}"


class FakeClock:
    """Time that moves only when the poller sleeps."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    async def sleep(self, dt: float) -> None:
        self.t += max(dt, 0.0)
        await asyncio.sleep(0)


def position(coin, szi, entry, liq, lev=20, kind="cross", margin="100.0"):
    lev_obj = {"type": kind, "value": lev} if kind == "cross" else {"type": kind, "value": lev, "rawUsd": "-95.0"}
    return {"type": "oneWay", "position": {
        "coin": coin, "szi": szi, "entryPx": entry, "leverage": lev_obj, "liquidationPx": liq,
        "marginUsed": margin, "positionValue": "1.0", "unrealizedPnl": "0.0", "returnOnEquity": "0.0",
        "maxLeverage": 40, "cumFunding": {"allTime": "0.0", "sinceChange": "0.0", "sinceOpen": "0.0"}}}


def state(*positions) -> dict:
    return {"assetPositions": list(positions),
            "marginSummary": {"accountValue": "1000.0", "totalMarginUsed": "0.0", "totalNtlPos": "0.0",
                              "totalRawUsd": "1000.0"},
            "crossMarginSummary": {"accountValue": "1000.0", "totalMarginUsed": "0.0", "totalNtlPos": "0.0",
                                   "totalRawUsd": "1000.0"},
            "crossMaintenanceMarginUsed": "0.0", "withdrawable": "1000.0", "time": 1708622398623}


class InfoServer:
    """``POST /info`` on 127.0.0.1: answers from ``answers[wallet]`` (a list consumed in order, the last one
    repeated; an int is an HTTP status, bytes are sent as they are), every arrival stamped with the clock."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.answers: dict[str, list] = {}
        self.arrivals: list[tuple[float, str]] = []
        self.bodies: list[dict] = []
        self.runner = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.bodies.append(body)
        user = body.get("user", "")
        self.arrivals.append((self.clock(), user))
        queue = self.answers.get(user, [state()])
        ans = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(ans, int):
            return web.Response(status=ans, text="rate limited")
        raw = ans if isinstance(ans, bytes) else orjson.dumps(ans)
        return web.Response(body=raw, content_type="application/json")

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post("/info", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/info"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


def make_poller(server, clock, book=None, **kw):
    book = book or PositionBook()
    kw.setdefault("idle_s", 0.5)
    return PositionPoller(book, HttpTransport(server.url), ASSETS, clock=clock, sleep=clock.sleep, **kw)


async def drive(poller, clock, until: float, max_iter: int = 200_000) -> None:
    for _ in range(max_iter):
        if clock() >= until:
            return
        if not await poller.poll_once():
            await clock.sleep(poller.next_wait())
    raise AssertionError("poller did not reach the end time (hang guard)")


# ---------------------------------------------------------------------------------------------- parsing
def test_parse_the_documented_answer_isolated_eth():
    ps = parse_clearinghouse((DATA / "info_clearinghouse_state.docs.json").read_bytes(), wallet(1), 5.0, ASSETS)
    assert len(ps) == 1
    p = ps[0]
    assert (p.asset, p.size, p.entry, p.leverage, p.cross) == ("ETH", 0.0335, 2986.3, 20.0, False)
    assert p.liq_px == pytest.approx(2866.26936529) and p.margin == pytest.approx(4.967826)
    assert p.refreshed == 5.0


def test_parse_the_recorded_2023_answer_with_a_null_liquidation_price():
    ps = parse_clearinghouse((DATA / "info_clearinghouse_state.sdk-2023.trimmed.json").read_bytes(), wallet(2),
                             0.0, ASSETS)
    btc, eth = ps
    assert btc.size == -0.00785 and btc.cross and btc.liq_px == pytest.approx(173198.69592357)
    assert eth.size == 0.1334 and math.isnan(eth.liq_px) and eth.at_risk_usd == 0.0


def test_parse_k_coins_and_coins_outside_the_universe():
    ans = state(position("kPEPE", "1000.0", "0.012", "0.010"), position("HYPE", "5.0", "30.0", "20.0"))
    (p,) = parse_clearinghouse(orjson.dumps(ans), wallet(3), 0.0, ASSETS)
    assert p.asset == "PEPE" and p.size == 1_000_000.0
    assert p.entry == pytest.approx(0.000012) and p.liq_px == pytest.approx(0.00001)


@pytest.mark.parametrize("body", [
    b"<html>bad gateway</html>",
    orjson.dumps({"assetPositions": "none"}),
    orjson.dumps(state(position("BTC", "1.0", "100.0", "90.0") | {"position": {"coin": "BTC"}})),
    orjson.dumps({"assetPositions": [{"position": {"coin": "BTC", "szi": "1", "entryPx": "100",
                                                   "leverage": 20, "liquidationPx": "90", "marginUsed": "5"}}]}),
    orjson.dumps(state(position("BTC", "nan", "100.0", "90.0"))),
    orjson.dumps(state(position("BTC", "1.0", "-100.0", "90.0"))),
])
def test_malformed_answers_raise(body):
    with pytest.raises(MalformedAnswer):
        parse_clearinghouse(body, wallet(4), 0.0, ASSETS)


# ---------------------------------------------------------------------------------------------- ranking, budget
def test_ranker_largest_notional_first_newest_trade_next_and_a_cap():
    forgotten = []
    r = WalletRanker(max_wallets=3, refresh_s=60.0, on_forget=forgotten.append, min_refresh_s=1.0)
    r.on_users("BTC", (wallet(1), wallet(2)), 1000.0, 10.0)
    r.on_users("BTC", (wallet(3), wallet(2)), 5000.0, 11.0)
    assert r.next(11.0) == wallet(2)  # 6000 USD seen
    r.polled(wallet(2), 11.0, [])
    assert r.next(11.0) == wallet(3)
    r.polled(wallet(3), 11.5, [])
    assert r.next(11.5) == wallet(1)
    r.polled(wallet(1), 11.5, [])
    assert r.next(12.0) is None  # nothing due until a wallet trades again or its refresh comes
    r.on_users("ETH", (wallet(1), wallet(1)), 10.0, 12.2)
    assert r.next(12.2) is None  # traded since its poll, but polled less than min_refresh_s ago
    assert r.next(12.5) == wallet(1)  # traded since its poll
    r.polled(wallet(1), 13.0, [])
    for k in range(50):  # a wallet trading all the time is asked at most once per min_refresh_s
        r.on_users("ETH", (wallet(1), wallet(1)), 10.0, 13.0 + k * 0.02)
    assert r.next(13.9) is None and r.next(14.0) == wallet(1)
    r.polled(wallet(1), 14.0, [])
    assert r.next(71.0) == wallet(2) and r.next(71.4) == wallet(2)  # refresh due, oldest poll first
    # the cap: at most ``slack`` above it, then the lowest ranked are forgotten down to the cap
    for i in range(10, 10 + r.slack + 1):
        r.on_users("ETH", (wallet(i), wallet(i)), 100.0 + i, 20.0)
    assert len(r.wallets) == 3 and set(forgotten) >= {wallet(1), wallet(2), wallet(3)}
    assert r.next(20.0) == wallet(10 + r.slack)  # the largest of those left
    r.on_users("BTC", (wallet(1) + "zz", "not-a-wallet"), 1.0, 21.0)
    assert r.stats["bad_address"] == 2


def test_rate_budget_sliding_window():
    b = RateBudget(10.0)
    for t in range(5):
        assert b.wait(2, float(t)) == 0.0
        b.take(2, float(t))
    assert b.wait(2, 5.0) == pytest.approx(55.0)  # the first request leaves the window at 60
    assert b.wait(2, 60.0) == 0.0


# ---------------------------------------------------------------------------------------------- loopback server
async def test_burst_of_500_new_wallets_never_exceeds_the_budget():
    clock = FakeClock()
    async with InfoServer(clock) as srv:
        for i in range(500):
            srv.answers[wallet(i)] = [state(position("BTC", f"{(i % 7) + 1}.0", "100000.0", "95000.0"))]
        poller = make_poller(srv, clock, refresh_s=120.0)
        t0 = clock()
        for i in range(0, 500, 2):  # 250 trades, two new wallets each, all at once
            poller.on_users("BTC", (wallet(i), wallet(i + 1)), 1000.0 + i, t0)
        await drive(poller, clock, t0 + 300.0)
        await poller.transport.close()
    times = np.array([t for t, _ in srv.arrivals])
    assert len(times) > 500
    # server side: weight (2 per request) in every 60 s window ending at an arrival
    per_window = [(np.count_nonzero((times > t - 60.0) & (times <= t))) * 2 for t in times]
    assert max(per_window) <= 600  # half of 1200 per minute, the default
    assert max(per_window) >= 590  # and the budget is used, not wasted
    first = {}
    for t, u in srv.arrivals:
        first.setdefault(u, t)
    assert len(first) == 500  # every new wallet polled ...
    assert max(first.values()) - t0 <= 120.0  # ... within two minutes at 300 requests a minute
    # largest notional first: the wallets seen with the most USD were asked first
    order = [u for u, _ in sorted(first.items(), key=lambda kv: kv[1])]
    assert order[0] in (wallet(498), wallet(499))
    assert poller.book.wallets == 500
    assert all(b == {"type": "clearinghouseState", "user": b["user"]} for b in srv.bodies)


async def test_429_backs_off_then_recovers():
    clock = FakeClock()
    async with InfoServer(clock) as srv:
        srv.answers[wallet(1)] = [429, 429, 429, state(position("BTC", "1.0", "100000.0", "95000.0"))]
        poller = make_poller(srv, clock, backoff_s=2.0)
        poller.on_users("BTC", (wallet(1), wallet(1)), 1000.0, clock())
        await drive(poller, clock, clock() + 30.0)
        await poller.transport.close()
    t = [a for a, _ in srv.arrivals[:4]]
    gaps = np.diff(t)
    assert gaps.tolist() == pytest.approx([2.0, 4.0, 8.0])  # no request during a pause; the pause doubles
    assert poller.stats.rate_limited == 3 and poller.stats.answers >= 1
    assert poller.book.levels("BTC", 50.0)[1].sum() == pytest.approx(95_000.0)


async def test_malformed_answers_are_counted_and_dropped():
    clock = FakeClock()
    async with InfoServer(clock) as srv:
        srv.answers[wallet(1)] = [b"not json"]
        srv.answers[wallet(2)] = [{"assetPositions": [{"position": {"coin": "BTC", "szi": "1"}}]}]
        srv.answers[wallet(3)] = [state(position("ETH", "2.0", "3000.0", "2800.0"))]
        poller = make_poller(srv, clock, refresh_s=1000.0)
        poller.on_users("BTC", (wallet(1), wallet(2)), 1000.0, clock())
        poller.on_users("ETH", (wallet(3), wallet(3)), 1.0, clock())
        await drive(poller, clock, clock() + 10.0)
        await poller.transport.close()
    assert poller.stats.malformed == 2 and poller.stats.answers == 1
    assert "malformed clearinghouseState" in poller.stats.last_error
    assert poller.book.wallets == 1 and poller.book.positions("ETH")[0].liq_px == 2800.0


async def test_a_position_vanishing_at_its_liquidation_price_becomes_a_liquidation_row():
    clock = FakeClock()
    tape = PriceTape()
    rows_out = []
    async with InfoServer(clock) as srv:
        w = wallet(7)
        srv.answers[w] = [state(position("BTC", "3.0", "100000.0", "95000.0")), state()]
        book = PositionBook(tolerance_pct=0.5)
        poller = make_poller(srv, clock, book, refresh_s=30.0, price_range=tape.range,
                             on_liquidations=lambda found: rows_out.append(book.liquidation_rows(found, 3)))
        poller.on_users("BTC", (w, wallet(8)), 5000.0, clock())
        await drive(poller, clock, clock() + 5.0)
        assert book.positions("BTC")[0].liq_px == 95_000.0
        # price trades down through 95,000 before the next poll
        tr = np.zeros(2, TRADE_DTYPE)
        tr["ts"], tr["price"] = [clock() + 1.0, clock() + 2.0], [96_000.0, 94_950.0]
        tape.tap("trade", "BTC", tr)
        await drive(poller, clock, clock() + 40.0)
        await poller.transport.close()
    assert poller.stats.detected == 1 and len(book.detected) == 1
    (rows,) = rows_out
    assert rows["price"].tolist() == [95_000.0] and rows["usd"].tolist() == [285_000.0]
    assert rows["side"].tolist() == [1]

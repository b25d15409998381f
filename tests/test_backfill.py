"""Live start back-fill (docs/model.md §3 step 10): Binance's, Bybit's and OKX's OI history and 1-minute bars
through the synthetic model, served by a real TLS server on 127.0.0.1 in each venue's documented response shapes
(docs/venues.md §4)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.core.engine import Engine
from liqmap.core.events import VENUE_ID
from liqmap.core.market import Market
from liqmap.feeds.backfill import BackfillError, backfill, binance, bybit, okx
from liqmap.feeds.backfill.binance import KLINES_PATH, OI_HIST_PATH, oi_from_history
from liqmap.feeds.backfill.rows import trades
from tls import loopback

server = loopback.server


def trades_from_klines(rows: list) -> np.ndarray:
    """Binance kline arrays → the model's rows, as the back-fill makes them."""
    return trades(binance.minutes_from_klines(rows), binance.VID)
T_END_MS = 1_763_900_000_000  # the last kline's close


def _history(hours: float = 6.0, seed: int = 3):
    """A BTC-like market: 1-minute klines on a random walk, OI every 5 minutes rising while price rises."""
    rng = np.random.default_rng(seed)
    n = int(hours * 60)
    close = 66_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
    opens = np.r_[66_000.0, close[:-1]]
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.0006, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.0006, n))
    quote = rng.uniform(2e7, 6e7, n)
    buy = quote * np.clip(0.5 + 40 * (close / opens - 1), 0.05, 0.95)  # takers buy into the rises
    t_close = T_END_MS - 60_000 * np.arange(n)[::-1]
    klines = [[int(tc - 59_999), f"{o:.1f}", f"{h:.1f}", f"{lo:.1f}", f"{c:.1f}", f"{q / c:.3f}", int(tc),
               f"{q:.4f}", 1000, f"{b / c:.3f}", f"{b:.4f}", "0"]
              for tc, o, h, lo, c, q, b in zip(t_close, opens, high, low, close, quote, buy, strict=True)]
    t_oi = t_close[4::5]
    oi = 80_000.0 + 4_000.0 * (close[4::5] / 66_000.0 - 1) * 50 + np.arange(len(t_oi)) * 5.0
    hist = [{"symbol": "BTCUSDT", "sumOpenInterest": f"{x:.3f}", "sumOpenInterestValue": f"{x * c:.2f}",
             "timestamp": int(t)} for t, x, c in zip(t_oi, oi, close[4::5], strict=True)]
    return klines, hist, close


def _bybit(klines: list, hist: list, share: float = 0.6, single: bool = True) -> tuple[str, str]:
    """The same market as Bybit answers it (``share`` of Binance's size): ``/v5/market/kline`` (newest first,
    [start, open, high, low, close, volume, turnover], no taker split) and ``/v5/market/open-interest``
    (newest first; ``openInterest`` both sides, ``singleOpenInterest`` one, dropped when ``single`` is off)."""
    k = [[str(r[0]), r[1], r[2], r[3], r[4], f"{float(r[5]) * share:.3f}", f"{float(r[7]) * share:.4f}"]
         for r in reversed(klines)]
    o = [{"openInterest": f"{2 * float(h['sumOpenInterest']) * share:.3f}", "timestamp": str(h["timestamp"] - 299_999)}
         | ({"singleOpenInterest": f"{float(h['sumOpenInterest']) * share:.3f}"} if single else {})
         for h in reversed(hist)]
    wrap = lambda rows: json.dumps({"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": rows},
                                    "retExtInfo": {}, "time": T_END_MS})  # noqa: E731
    return wrap(k), wrap(o)


def _okx(klines: list, hist: list, share: float = 0.5):
    """The same market as OKX answers it: ``/api/v5/market/candles`` ([ts, o, h, l, c, vol, volCcy, volCcyQuote,
    confirm], newest first, ``limit`` a page, ``after`` = older than) and the contract open-interest history
    ([ts, oi, oiCcy, oiUsd], newest first, ``end`` = older than), as callables of the query: OKX pages."""
    candles = [[str(r[0]), r[1], r[2], r[3], r[4], f"{float(r[5]) * share * 100:.1f}", f"{float(r[5]) * share:.3f}",
                f"{float(r[7]) * share:.4f}", "1"] for r in reversed(klines)]
    ois = [[str(h["timestamp"] - 299_999), f"{float(h['sumOpenInterest']) * share * 100:.1f}",
            f"{float(h['sumOpenInterest']) * share:.3f}", f"{float(h['sumOpenInterestValue']) * share:.2f}"]
           for h in reversed(hist)]

    def paged(rows: list, cursor: str):
        def answer(q: dict) -> str:
            older = [r for r in rows if cursor not in q or int(r[0]) < int(q[cursor])]
            return json.dumps({"code": "0", "msg": "", "data": older[:int(q.get("limit", 100))]})
        return answer

    return paged(candles, "after"), paged(ois, "end")


def _serve(server, hours: float = 6.0, venues=("binance", "bybit", "okx"), seed: int = 3):
    klines, hist, close = _history(hours, seed)
    if "binance" in venues:
        server.rest[KLINES_PATH] = json.dumps(klines)
        server.rest[OI_HIST_PATH] = json.dumps(hist)
    if "bybit" in venues:
        server.rest[bybit.KLINE_PATH], server.rest[bybit.OI_PATH] = _bybit(klines, hist)
    if "okx" in venues:
        server.rest[okx.CANDLES_PATH], server.rest[okx.OI_PATH] = _okx(klines, hist)
    return klines, hist, close


def _cfg(base: str, hours: float = 6.0) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    for v in ("binance", "bybit", "okx"):
        cfg["feeds"]["endpoints"][f"{v}_rest"] = f"https://{base}"
    cfg["feeds"]["backfill_hours"] = hours
    cfg["feeds"]["backfill_timeout_seconds"] = 3.0
    cfg["universe"]["assets"] = ["BTC", "ETH"]
    return cfg


def test_rows_from_binance_shapes_and_bad_rows():
    klines, hist, close = _history(hours=0.5)
    tr = trades_from_klines(klines)
    assert len(tr) == 5 * len(klines)  # low marker, taker buys, taker sells, high marker, close marker per minute
    assert np.all(np.diff(tr["ts"]) >= 0)
    k0 = klines[0]
    first = tr[:5]
    assert first["price"][0] == pytest.approx(float(k0[3])) and first["price"][3] == pytest.approx(float(k0[2]))
    # each minute's last trade is its close (the model reads a minute's last price as its close)
    assert np.allclose(tr["price"][4::5], [float(k[4]) for k in klines]) and np.all(tr["usd"][4::5] < 1e-3)
    typical = (float(k0[2]) + float(k0[3]) + float(k0[4])) / 3
    assert first["usd"][1] == pytest.approx(float(k0[10])) and first["price"][1] == pytest.approx(typical)
    assert first["usd"][2] == pytest.approx(float(k0[7]) - float(k0[10]))
    assert first["ts"][0] == pytest.approx(k0[6] / 1000)
    oi = oi_from_history(hist)
    assert oi["oi"][0] == pytest.approx(float(hist[0]["sumOpenInterest"]))
    assert oi["mark"][0] == pytest.approx(float(hist[0]["sumOpenInterestValue"]) / float(hist[0]["sumOpenInterest"]))
    with pytest.raises(BackfillError, match="kline row unreadable"):
        trades_from_klines([[1, "x"]])
    with pytest.raises(BackfillError, match="out of range"):
        trades_from_klines([[0, "1", "1", "2", "1", "1", 60_000, "1", 1, "1", "1", "0"]])  # low above high
    with pytest.raises(BackfillError, match="open-interest row"):
        oi_from_history([{"sumOpenInterest": "0", "sumOpenInterestValue": "1", "timestamp": 1}])


async def test_history_fills_the_model_before_live_rows_and_fakes_no_observation(server):
    klines, hist, close = _serve(server, venues=("binance",))
    cfg = _cfg(server.base)
    market = Market(["BTC", "ETH"])
    eng = Engine(cfg, market, clock=lambda: T_END_MS / 1000 + 1)
    res = await backfill(eng, cfg, ["ETH", "BTC"], ("binance",), first="BTC")
    assert list(res) == ["BTC", "ETH"] and res["BTC"].startswith("ok")  # the asset on screen first
    q = server.queries[KLINES_PATH][0]
    assert "symbol=BTCUSDT" in q and "interval=1m" in q and "limit=360" in q
    assert "period=5m" in server.queries[OI_HIST_PATH][0] and "limit=72" in server.queries[OI_HIST_PATH][0]
    assert not eng.held("BTC") and not eng.held("ETH")
    m = eng.state("BTC").model
    assert m.stats["intervals"] >= 10 and m.stats["added_usd"] > 0
    b, lo, sh = m.levels()
    assert lo.sum() > 0 and sh.sum() > 0
    last = close[-1]
    step = eng.state("BTC").step
    # swept levels were consumed by the minutes' highs and lows: longs sit below the last price, shorts above
    assert np.all(b[lo > 0] * step < last) and np.all((b[sh > 0] + 1) * step > last)
    assert m.sigma_hour != m.params["forecast_default_vol_hour_pct"] / 100  # measured from the klines
    # ... on the minutes' closes, as live trades would leave them (the high marker was each minute's last price)
    closes = m.minute_closes
    assert m.last_price == pytest.approx(round(last, 1), rel=1e-12)  # the kline prints one decimal
    assert [p for _, p in closes[-30:]] == pytest.approx(close[-30:].round(1).tolist(), rel=1e-9)
    # the history is the model's only: the Raw map's rings hold no invented trade or OI
    assert len(market.gather("trade", "BTC")) == 0 and len(market.gather("oi", "BTC")) == 0
    assert eng.status == ""


async def test_the_models_replay_runs_off_the_event_loop(server):
    """The back-fill's model replay (tens of ms of CPU per asset, 65 assets) runs in a worker thread: the event loop
    (the UI, the live feeds) keeps turning while an asset's history goes into its model."""
    import asyncio
    import threading

    _serve(server, hours=1.0)
    cfg = _cfg(server.base, hours=1.0)
    eng = Engine(cfg, Market(["BTC", "ETH"]), clock=lambda: T_END_MS / 1000 + 1)
    loop_thread = threading.get_ident()
    seen: list[tuple[int, int]] = []  # (thread, loop turns counted while the model was fed)
    turns = 0
    fed = eng.backfill

    def backfill_watched(*a, **k):
        before = turns
        deadline = threading.Event()
        # hold the model's lock a moment the way a long replay would: the loop must keep turning meanwhile
        deadline.wait(0.05)
        n = fed(*a, **k)
        seen.append((threading.get_ident(), turns - before))
        return n

    eng.backfill = backfill_watched
    stop = False

    async def spin():
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    spinner = asyncio.ensure_future(spin())
    res = await backfill(eng, cfg, ["BTC", "ETH"], first="BTC")
    stop = True
    await spinner
    assert res["BTC"].startswith("ok") and res["ETH"].startswith("ok")
    assert len(seen) == 2 and all(t != loop_thread for t, _ in seen)
    assert all(n > 0 for _, n in seen)  # the loop turned while each asset's model was fed
    assert eng.state("BTC").model.stats["intervals"] > 0


async def test_a_failing_fetch_costs_the_history_and_nothing_else(server):
    cfg = _cfg(server.base)
    eng = Engine(cfg, Market(["BTC", "ETH"]))
    res = await backfill(eng, cfg, ["BTC", "ETH"], ("binance",))  # nothing served: 404
    assert res["BTC"].startswith("binance: HTTP 404") and res["ETH"].startswith("binance: HTTP 404")
    assert not eng.held("BTC") and not eng.held("ETH")
    assert "2 of 2 assets without history" in eng.status
    server.rest[KLINES_PATH] = json.dumps({"code": -1121, "msg": "Invalid symbol."})
    server.rest[OI_HIST_PATH] = "[]"
    res = await backfill(eng, cfg, ["BTC"], ("binance",))
    assert "unexpected body" in res["BTC"] and not eng.held("BTC")
    # nobody listening: the first failure answers for the rest (no timeout per asset)
    cfg2 = _cfg(f"127.0.0.1:{loopback.free_port()}")
    eng2 = Engine(cfg2, Market(["BTC", "ETH"]))
    res = await backfill(eng2, cfg2, ["BTC", "ETH"])
    assert all(f"{v}: refused" in res["BTC"] for v in ("binance", "bybit", "okx"))
    assert all(f"{v}: skipped after BTC: refused" in res["ETH"] for v in ("binance", "bybit", "okx"))
    assert not eng2.held("BTC") and not eng2.held("ETH")
    # off by config
    cfg3 = _cfg(server.base, hours=0)
    assert await backfill(Engine(cfg3, Market(["BTC"])), cfg3, ["BTC"]) == {}


async def test_live_runner_backfills_the_screen_asset_first(server, tmp_path, monkeypatch):
    import types

    from liqmap.commands.run import build_runtime

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    _serve(server, hours=1.0)
    cfg = _cfg(server.base, hours=1.0)
    cfg["app"]["asset"] = "ETH"
    runner = build_runtime("live", cfg, types.SimpleNamespace(seed=None, speed=None))
    await runner.source._backfill(runner)
    assert list(runner.source.backfill_result) == ["ETH", "BTC"]
    assert all(r.startswith("ok") for r in runner.source.backfill_result.values())
    assert "symbol=ETHUSDT" in server.queries[KLINES_PATH][0] and "symbol=BTCUSDT" in server.queries[KLINES_PATH][1]
    assert runner.engine.state("ETH").model.stats["intervals"] > 0
    assert all("binance, bybit, okx" in r for r in runner.source.backfill_result.values())
    # the venue set decides which venues are asked; with none of the three there is nothing to fetch
    cfg["universe"]["venues"] = ["okx", "deribit"]
    only = build_runtime("live", cfg, types.SimpleNamespace(seed=None, speed=None))
    await only.source._backfill(only)
    assert all(r.startswith("ok") and "okx)" in r for r in only.source.backfill_result.values())
    cfg["universe"]["venues"] = ["deribit", "hyperliquid"]
    other = build_runtime("live", cfg, types.SimpleNamespace(seed=None, speed=None))
    await other.source._backfill(other)
    assert other.source.backfill_result == {}


def test_bybit_and_okx_rows_from_their_documented_shapes():
    from liqmap.feeds.backfill import binance, rows

    klines, hist, close = _history(hours=0.5)
    kb, ob = _bybit(klines, hist)
    bm = bybit.minutes_from_klines(json.loads(kb)["result"]["list"])
    assert len(bm) == len(klines) and np.all(np.diff(bm.ts) > 0)  # newest first on the wire, oldest first here
    assert np.allclose(bm.close, close.round(1)) and np.all(np.isnan(bm.buy))  # no taker split in Bybit's bars
    assert bm.ts[0] == pytest.approx(klines[0][6] / 1000)  # the same close time as Binance's minute
    boi = bybit.oi_from_history(json.loads(ob)["result"]["list"], bm)
    assert boi["oi"][0] == pytest.approx(0.6 * float(hist[0]["sumOpenInterest"]), rel=1e-6)  # one side
    assert np.all(boi["venue"] == VENUE_ID["bybit"]) and np.all(np.diff(boi["ts"]) > 0)
    # valued at the last close at or before the sample (Bybit's answer carries no value)
    at = np.searchsorted(bm.ts, boi["ts"][3], side="right") - 1
    assert boi["mark"][3] == pytest.approx(bm.close[at])
    # a body from before singleOpenInterest: its two-sided figure is halved, as the ticker's is
    _, ob2 = _bybit(klines, hist, single=False)
    assert bybit.oi_from_history(json.loads(ob2)["result"]["list"], bm)["oi"] == pytest.approx(boi["oi"])
    # Binance's minute lends its taker split φ; a minute Binance lacks splits evenly
    ref = binance.minutes_from_klines(klines[:-1])
    lent = rows.borrow_split(bm, ref)
    phi = float(klines[2][10]) / float(klines[2][7])
    assert lent.buy[2] == pytest.approx(bm.quote[2] * phi) and lent.buy[-1] == pytest.approx(bm.quote[-1] / 2)
    tr = rows.trades(lent, VENUE_ID["bybit"])
    assert tr["usd"][1::5][:3] == pytest.approx(lent.buy[:3]) and np.all(tr["venue"] == VENUE_ID["bybit"])
    with pytest.raises(BackfillError, match="retCode 10001"):
        bybit._list({"retCode": 10001, "retMsg": "params error"}, "BTCUSDT klines")
    with pytest.raises(BackfillError, match="bybit kline row unreadable"):
        bybit.minutes_from_klines([["x"]])
    # OKX: quote turnover is volCcyQuote, open interest oiCcy coins and oiUsd
    candles, ois = _okx(klines, hist)
    om = okx.minutes_from_candles(json.loads(candles({"limit": "300"}))["data"])
    assert len(om) == len(klines) and om.quote[0] == pytest.approx(0.5 * float(klines[0][7]), rel=1e-6)
    ooi = okx.oi_from_history(json.loads(ois({}))["data"])
    assert ooi["oi"][-1] == pytest.approx(0.5 * float(hist[-1]["sumOpenInterest"]), rel=1e-6)
    assert ooi["oi_usd"][-1] == pytest.approx(0.5 * float(hist[-1]["sumOpenInterestValue"]), rel=1e-6)
    with pytest.raises(BackfillError, match="code 51001"):
        okx._data({"code": "51001", "msg": "Instrument ID does not exist", "data": []}, "X candles")
    with pytest.raises(BackfillError, match="okx candle row out of range"):
        okx.minutes_from_candles([["60000", "1", "1", "2", "1", "1", "1", "1", "1"]])  # low above high


async def test_three_venues_fill_one_model_each_with_its_own_positions(server):
    klines, hist, close = _serve(server)
    cfg = _cfg(server.base)
    eng = Engine(cfg, Market(["BTC", "ETH"]), clock=lambda: T_END_MS / 1000 + 1)
    res = await backfill(eng, cfg, ["BTC"])
    assert res["BTC"].startswith("ok (") and "binance, bybit, okx)" in res["BTC"] and eng.status == ""
    # OKX pages back: 300 candles, then the 60 older than the oldest seen; its OI in one page of 72
    cq = server.queries[okx.CANDLES_PATH]
    assert len(cq) == 2 and "after" not in cq[0] and f"after={int(klines[-300][0])}" in cq[1]
    assert "period=5m" in server.queries[okx.OI_PATH][0] and len(server.queries[okx.OI_PATH]) == 1
    bq = server.queries[bybit.KLINE_PATH][0]
    assert "category=linear" in bq and "interval=1" in bq and "limit=360" in bq
    assert "intervalTime=5min" in server.queries[bybit.OI_PATH][0]
    m = eng.state("BTC").model
    for v in ("binance", "bybit", "okx"):  # each venue's positions, placed with its own ladder
        b, lo, sh = m.levels((v,))
        assert lo.sum() > 0 and sh.sum() > 0, v
    b, lo, _ = m.levels(("deribit", "hyperliquid"))
    assert lo.sum() == 0  # no history published: nothing invented for them
    usd = {v: float(sum(x.sum() for x in m.levels((v,))[1:])) for v in ("binance", "bybit", "okx")}
    # sized by each venue's own open interest (Bybit 0.6, OKX 0.5 of Binance's here)
    assert usd["binance"] > usd["bybit"] > 0.5 * usd["binance"] * 0.6 and usd["okx"] > 0.5 * usd["binance"] * 0.5

    # a venue that fails costs its own history only, and the status line names it
    del server.rest[okx.OI_PATH]
    eng2 = Engine(cfg, Market(["BTC", "ETH"]), clock=lambda: T_END_MS / 1000 + 1)
    res = await backfill(eng2, cfg, ["BTC", "ETH"])
    assert all(r.startswith("ok (") and "binance, bybit; okx: HTTP 404" in r for r in res.values())
    assert eng2.status == "back-fill: okx history missing for 2 of 2 assets"
    assert eng2.state("BTC").model.levels(("bybit",))[1].sum() > 0
    assert eng2.state("BTC").model.levels(("okx",))[1].sum() == 0


async def test_lot_quoted_symbols_are_fed_per_coin(server):
    """1000PEPEUSDT quotes the price of 1000 coins (Binance, Bybit): the model is fed per-coin prices and coin
    counts, as the live adapters normalise them; OKX's PEPE-USDT-SWAP quotes per coin already."""
    klines, hist, close = _history(hours=1.0)
    lot = [[r[0], *(f"{float(x) / 66_000 * 0.012:.7f}" for x in r[1:5]), r[5], *r[6:]] for r in klines]
    hist_lot = [dict(h, sumOpenInterest=f"{float(h['sumOpenInterest']) * 1e6:.1f}") for h in hist]
    server.rest[KLINES_PATH] = json.dumps(lot)
    server.rest[OI_HIST_PATH] = json.dumps(hist_lot)
    server.rest[bybit.KLINE_PATH], server.rest[bybit.OI_PATH] = _bybit(lot, hist_lot)
    cfg = _cfg(server.base, hours=1.0)
    eng = Engine(cfg, Market(["PEPE"]), clock=lambda: T_END_MS / 1000 + 1)
    res = await backfill(eng, cfg, ["PEPE"], ("binance", "bybit"))
    assert res["PEPE"].startswith("ok (") and "binance, bybit)" in res["PEPE"]
    assert "symbol=1000PEPEUSDT" in server.queries[KLINES_PATH][0]
    m = eng.state("PEPE").model
    assert m.last_price == pytest.approx(float(lot[-1][4]) / 1000, rel=1e-9)  # per coin, not per 1000
    b, lo, sh = m.levels()
    step = eng.state("PEPE").step
    # the grid's step is chosen once, from the first price the asset sees (here the back-fill's): per lot, it was a
    # thousand times too coarse for the whole run (the Raw map and the model alike)
    assert step < m.last_price * 0.01
    assert lo.sum() > 0 and np.all(b[lo > 0] * step < m.last_price * 1.01)  # levels sit at per-coin prices


async def test_the_asset_the_trader_switches_to_is_fetched_next(server):
    """A held asset shows nothing until its history is in: the one put on screen while the back-fill runs jumps the
    queue, and the status line counts the assets done meanwhile."""
    _serve(server, hours=1.0)
    cfg = _cfg(server.base, hours=1.0)
    eng = Engine(cfg, Market(["BTC", "ETH", "SOL", "XRP"]), clock=lambda: T_END_MS / 1000 + 1)
    screen = {"asset": "BTC"}
    said: list[str] = []
    fed = eng.backfill

    def watched(asset, **k):
        said.append(eng.status)
        if asset == "BTC":
            screen["asset"] = "xrp"  # the trader switches while BTC's history goes in
        return fed(asset, **k)

    eng.backfill = watched
    res = await backfill(eng, cfg, ["BTC", "ETH", "SOL", "XRP"], ("binance",), first="BTC",
                         focus=lambda: screen["asset"])
    assert list(res) == ["BTC", "XRP", "ETH", "SOL"]
    assert [q.split("symbol=")[1].split("&")[0] for q in server.queries[KLINES_PATH]] == \
        ["BTCUSDT", "XRPUSDT", "ETHUSDT", "SOLUSDT"]
    assert said == ["back-fill: 1 of 4 assets (BTC)…", "back-fill: 2 of 4 assets (XRP)…",
                    "back-fill: 3 of 4 assets (ETH)…", "back-fill: 4 of 4 assets (SOL)…"]
    assert eng.status == "" and all(r.startswith("ok") for r in res.values())


async def test_doctor_fetches_an_hour_of_each_venues_history(server):
    """`liqmap doctor`'s back-fill rows: one hour of each venue's history fetched the way the start fetches it."""
    from liqmap.commands.doctor import _backfill_probe

    _serve(server, hours=1.0)
    cfg = _cfg(server.base, hours=6.0)
    for v in ("binance", "bybit", "okx"):
        url, ok, what = await _backfill_probe(cfg, v, "BTC", 3.0)
        assert ok and url == f"https://{server.base}", (v, what)
        assert what == "ok: 12 open-interest samples, 60 one-minute bars", (v, what)
    del server.rest[bybit.OI_PATH]
    url, ok, what = await _backfill_probe(cfg, "bybit", "BTC", 3.0)
    assert not ok and what.startswith("error: HTTP 404")

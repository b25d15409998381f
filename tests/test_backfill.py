"""Live start back-fill (docs/model.md §3 step 10): Binance OI history and klines through the synthetic model,
served by a real TLS server on 127.0.0.1 in Binance's documented response shapes."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.core.engine import Engine
from liqmap.core.market import Market
from liqmap.feeds.backfill import (KLINES_PATH, OI_HIST_PATH, BackfillError, backfill, oi_from_history,
                                   trades_from_klines)
from tls import loopback

server = loopback.server
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


def _cfg(base: str, hours: float = 6.0) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["feeds"]["endpoints"]["binance_rest"] = f"https://{base}"
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
    klines, hist, close = _history()
    server.rest[KLINES_PATH] = json.dumps(klines)
    server.rest[OI_HIST_PATH] = json.dumps(hist)
    cfg = _cfg(server.base)
    market = Market(["BTC", "ETH"])
    eng = Engine(cfg, market, clock=lambda: T_END_MS / 1000 + 1)
    res = await backfill(eng, cfg, ["ETH", "BTC"], {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}, first="BTC")
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

    klines, hist, _ = _history(hours=1.0)
    server.rest[KLINES_PATH] = json.dumps(klines)
    server.rest[OI_HIST_PATH] = json.dumps(hist)
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
    res = await backfill(eng, cfg, ["BTC", "ETH"], {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}, first="BTC")
    stop = True
    await spinner
    assert res["BTC"].startswith("ok") and res["ETH"].startswith("ok")
    assert len(seen) == 2 and all(t != loop_thread for t, _ in seen)
    assert all(n > 0 for _, n in seen)  # the loop turned while each asset's model was fed
    assert eng.state("BTC").model.stats["intervals"] > 0


async def test_a_failing_fetch_costs_the_history_and_nothing_else(server):
    cfg = _cfg(server.base)
    eng = Engine(cfg, Market(["BTC", "ETH"]))
    res = await backfill(eng, cfg, ["BTC", "ETH"], {"BTC": "BTCUSDT", "ETH": "ETHUSDT"})  # nothing served: 404
    assert res["BTC"].startswith("HTTP 404") and res["ETH"].startswith("HTTP 404")
    assert not eng.held("BTC") and not eng.held("ETH")
    assert "2 of 2 assets without history" in eng.status
    server.rest[KLINES_PATH] = json.dumps({"code": -1121, "msg": "Invalid symbol."})
    server.rest[OI_HIST_PATH] = "[]"
    res = await backfill(eng, cfg, ["BTC"], {"BTC": "BTCUSDT"})
    assert "unexpected body" in res["BTC"] and not eng.held("BTC")
    # nobody listening: the first failure answers for the rest (no timeout per asset)
    cfg2 = _cfg(f"127.0.0.1:{loopback.free_port()}")
    eng2 = Engine(cfg2, Market(["BTC", "ETH"]))
    res = await backfill(eng2, cfg2, ["BTC", "ETH"], {"BTC": "BTCUSDT", "ETH": "ETHUSDT"})
    assert "Error" in res["BTC"] and res["ETH"].startswith("skipped after BTC")
    assert not eng2.held("BTC") and not eng2.held("ETH")
    # off by config
    cfg3 = _cfg(server.base, hours=0)
    assert await backfill(Engine(cfg3, Market(["BTC"])), cfg3, ["BTC"], {"BTC": "BTCUSDT"}) == {}


async def test_live_runner_backfills_the_screen_asset_first(server, tmp_path, monkeypatch):
    import types

    from liqmap.commands.run import build_runtime

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    klines, hist, _ = _history(hours=1.0)
    server.rest[KLINES_PATH] = json.dumps(klines)
    server.rest[OI_HIST_PATH] = json.dumps(hist)
    cfg = _cfg(server.base, hours=1.0)
    cfg["app"]["asset"] = "ETH"
    runner = build_runtime("live", cfg, types.SimpleNamespace(seed=None, speed=None))
    await runner.source._backfill(runner)
    assert list(runner.source.backfill_result) == ["ETH", "BTC"]
    assert all(r.startswith("ok") for r in runner.source.backfill_result.values())
    assert "symbol=ETHUSDT" in server.queries[KLINES_PATH][0] and "symbol=BTCUSDT" in server.queries[KLINES_PATH][1]
    assert runner.engine.state("ETH").model.stats["intervals"] > 0
    # without Binance in the venue set there is nothing to fetch
    cfg["universe"]["venues"] = ["bybit"]
    other = build_runtime("live", cfg, types.SimpleNamespace(seed=None, speed=None))
    await other.source._backfill(other)
    assert other.source.backfill_result == {}

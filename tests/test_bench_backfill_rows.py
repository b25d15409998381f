"""The forecast benchmark's back-fill variants (benchmarks/bench_forecast.py ``_as_backfill``): the history as the
live back-fill fetches it — Binance, Bybit and OKX with Binance's taker split lent to the other two (``klines``,
what the product does), Binance only (``klines_binance``), or every venue with its own split (``klines_all``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from liqmap.core import events as ev

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("bench_forecast_rows", ROOT / "benchmarks" / "bench_forecast.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_backfill_rows_are_each_venues_klines_and_five_minute_oi():
    bf = _bench()
    t0 = 1_699_999_800.0  # a 5-minute boundary
    trades, ois = [], []
    for venue, px in ((0, 100.0), (1, 101.0), (4, 99.0)):  # Binance, Bybit, Deribit
        for m in range(10):  # ten minutes, two trades a minute: a buy, then a sell at the minute's close
            trades.append((t0 + 60 * m + 10, px + m, 1.0, 1000.0 if venue != 1 else 100.0, 1, venue))
            trades.append((t0 + 60 * m + 50, px + m + 0.5, 1.0, 500.0 if venue != 1 else 1400.0, -1, venue))
        for s in range(0, 600, 10):  # OI every 10 s; a zero sample (a venue not open yet) is not a row
            ois.append((t0 + s, 0.0 if s == 0 else 10.0 + s, (0.0 if s == 0 else 10.0 + s) * px, px, venue))
    batch = [{"trade": ev.trades(trades), "oi": ev.open_interest(ois)}]
    oi, tr = bf._as_backfill(batch)
    assert set(np.unique(tr["venue"])) == {0} and set(np.unique(oi["venue"])) == {0}  # Binance only
    oi_all, tr_all = bf._as_backfill(batch, "all")
    assert set(np.unique(tr_all["venue"])) == {0, 1, 4} and set(np.unique(oi_all["venue"])) == {0, 1, 4}
    for v, px in ((0, 100.0), (1, 101.0), (4, 99.0)):
        t = tr_all[tr_all["venue"] == v]
        # five rows a kline (low, taker buys, taker sells, high, close), the close last; each venue's own split
        assert len(t) == 50 and t["price"][4::5] == pytest.approx([px + m + 0.5 for m in range(10)])
        buy, sell = (100.0, 1400.0) if v == 1 else (1000.0, 500.0)
        assert t["usd"][1::5] == pytest.approx([buy] * 10) and t["usd"][2::5] == pytest.approx([sell] * 10)
        o = oi_all[oi_all["venue"] == v]
        assert o["oi"].tolist() == [300.0, 600.0]  # the last sample of each 5 minutes
    assert np.all(np.diff(tr_all["ts"]) >= 0) and np.all(np.diff(oi_all["ts"]) >= 0)
    # the live back-fill's venues: Binance, Bybit, OKX (none here); Deribit publishes no OI history. Bybit's bars
    # have no split of their own: Binance's minute lends it (2/3 bought), so its 1,500 a minute is 1,000 / 500
    oi_live, tr_live = bf._as_backfill(batch, "live")
    assert set(np.unique(tr_live["venue"])) == {0, 1} and set(np.unique(oi_live["venue"])) == {0, 1}
    t = tr_live[tr_live["venue"] == 1]
    assert t["usd"][1::5] == pytest.approx([1000.0] * 10) and t["usd"][2::5] == pytest.approx([500.0] * 10)

"""A change in the books alone (no trade since) reaches the snapshot on screen at once."""

from __future__ import annotations

import copy

import numpy as np

from liqmap.config import DEFAULTS
from liqmap.core import events as ev
from liqmap.core.book import Book
from liqmap.core.engine import Engine
from liqmap.core.events import ASK, BID
from liqmap.core.market import Market
from common import Clock

T0 = 1_700_000_000.0



def test_a_pulled_bid_reaches_the_screen_without_a_trade():
    cfg = copy.deepcopy(DEFAULTS)
    clock = Clock(T0)
    market = Market(["BTC"], clock=clock)
    book = Book()
    book.apply(BID, [(65_990.0 - 10 * i, 2.0) for i in range(20)])
    book.apply(ASK, [(66_010.0 + 10 * i, 2.0) for i in range(20)])
    book.apply(BID, [(65_900.0, 400.0)])  # a big bid
    eng = Engine(cfg, market, books_provider=lambda asset: {"binance": book}, clock=clock)
    key = eng.set_view("BTC", "hybrid", "1m", None, 60, None)
    trades = ev.trades([(T0 - 5.0 + i, 66_000.0, 0.1, 6_600.0, 1 if i % 2 else -1, 0) for i in range(5)])
    assert market.add("trade", "BTC", trades) == 5
    eng.step(T0)
    first = eng.latest(key)
    share0 = first.reports["asymmetry"]["bid_share"]
    assert share0 > 0.8  # the big bid dominates the book read

    # the same second later: nothing traded, the big bid is pulled
    clock.t = T0 + 1.0
    book.apply(BID, [(65_900.0, 0.0)])
    eng.step(clock.t)
    after = eng.latest(key)
    assert after.version > first.version  # rebuilt although no row arrived
    assert after.reports["asymmetry"]["bid_share"] < 0.6
    assert np.array_equal(after.grid.values, first.grid.values)  # the map itself did not change

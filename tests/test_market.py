import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from liqmap.core import events as ev
from liqmap.core.market import Market

NOW = 1_700_000_000.0


def market():
    return Market(["BTC", "ETH"], clock=lambda: NOW)


def test_good_rows_are_stored_per_venue():
    m = market()
    rows = ev.liquidations([
        (NOW - 5, 66000.0, 0.5, 33000.0, ev.LONG, ev.VENUE_ID["binance"], ev.PRICE_FILL),
        (NOW - 4, 66010.0, 1.0, 66010.0, ev.SHORT, ev.VENUE_ID["okx"], ev.PRICE_BANKRUPTCY),
    ])
    assert m.add("liq", "BTC", rows) == 2
    assert len(m.ring("liq", "BTC", "binance")) == 1
    assert len(m.ring("liq", "BTC", "okx")) == 1
    g = m.gather("liq", "BTC")
    assert g["price"].tolist() == [66000.0, 66010.0]
    assert m.rejects.total() == 0 and m.version == 1


def test_bad_rows_are_rejected_and_counted_per_reason():
    m = market()
    b = ev.VENUE_ID["bybit"]
    rows = ev.trades([
        (NOW, float("nan"), 1.0, 1.0, 1, b),
        (NOW, float("inf"), 1.0, 1.0, 1, b),
        (NOW, 0.0, 1.0, 1.0, 1, b),
        (NOW, -5.0, 1.0, 1.0, 1, b),
        (NOW, 100.0, 0.0, 0.0, 1, b),
        (NOW, 100.0, -1.0, 1.0, 1, b),
        (NOW, 100.0, float("nan"), 1.0, 1, b),
        (NOW + 3600, 100.0, 1.0, 100.0, 1, b),
        (float("nan"), 100.0, 1.0, 100.0, 1, b),
        (NOW, 100.0, 1.0, 100.0, 1, 17),
        (NOW, 100.0, 1.0, 100.0, -1, b),  # the one good row
    ])
    assert m.add("trade", "BTC", rows) == 1
    assert m.rejects.by_reason() == {
        "bad_price": 4, "bad_size": 3, "future_ts": 1, "bad_ts": 1, "unknown_venue": 1,
    }
    assert m.gather("trade", "BTC")["price"].tolist() == [100.0]


def test_unknown_asset_rejected_not_stored():
    m = market()
    rows = ev.trades([(NOW, 1.0, 1.0, 1.0, 1, 0)])
    assert m.add("trade", "NOPE", rows) == 0
    assert m.rejects.by_reason() == {"unknown_asset": 1}
    assert m.gather("trade", "NOPE").size == 0


def test_book_deletes_and_zero_oi_are_allowed():
    m = market()
    assert m.add("book", "BTC", ev.book_levels([(NOW, 66000.0, 0.0, ev.BID, 0)])) == 1
    assert m.add("oi", "BTC", ev.open_interest([(NOW, 0.0, 0.0, 66000.0, 0)])) == 1


finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.0))


@given(st.lists(st.tuples(finite_or_not, finite_or_not, finite_or_not, st.integers(0, 7)), max_size=30))
def test_nothing_bad_is_ever_stored(raw):
    m = market()
    rows = ev.liquidations([(NOW - 1, p, q, u, 1, v, 0) for p, q, u, v in raw])
    kept = m.add("liq", "ETH", rows)
    stored = m.gather("liq", "ETH")
    assert len(stored) == kept
    assert kept + m.rejects.total() == len(raw)
    for f in ("price", "qty", "usd"):
        assert np.isfinite(stored[f]).all()
    assert (stored["price"] > 0).all() and (stored["qty"] > 0).all()


def test_take_new_returns_only_new_rows_time_sorted_and_advances_cursors():
    m = market()
    cur: dict = {}
    b, o = ev.VENUE_ID["binance"], ev.VENUE_ID["okx"]
    m.add("trade", "BTC", ev.trades([(NOW - 3, 1.0, 1.0, 1.0, 1, b), (NOW - 1, 2.0, 1.0, 2.0, 1, o)]))
    assert m.take_new("trade", "BTC", cur)["ts"].tolist() == [NOW - 3, NOW - 1]
    assert m.take_new("trade", "BTC", cur).size == 0
    m.add("trade", "BTC", ev.trades([(NOW - 0.5, 3.0, 1.0, 3.0, 1, o), (NOW - 2, 4.0, 1.0, 4.0, 1, b)]))
    assert m.take_new("trade", "BTC", cur)["price"].tolist() == [4.0, 3.0]
    assert cur == {("trade", "binance"): 2, ("trade", "okx"): 2}

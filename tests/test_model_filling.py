"""The OI cap's relief while the asset's open interest is filling (issue 17 item 4, session 11; docs/model.md §3
step 1, ``model.cap_open_fill_ratio``, ``liqmap/core/model/filling.py``)."""

from __future__ import annotations

import math

import pytest

from liqmap.core.model.filling import OIFill
from test_synthetic import BIN, BYB, EMPTY_L, EMPTY_O, EMPTY_T, model, oi_rows, trade_rows

P = 60_000.0


def _step(m, t, oi, traded=2e6, venue=BIN):
    """Trades of ``traded`` USD (3/4 taker buys), then an OI sample of ``oi`` BTC, at ``t``."""
    m.update(EMPTY_O, trade_rows((t - 20, P, 0.75 * traded, 1, venue), (t - 10, P, 0.25 * traded, -1, venue)), EMPTY_L)
    m.update(oi_rows((t, oi, P, venue)), EMPTY_T, EMPTY_L)


def _placed(m):
    return m.total_long() + m.total_short()


@pytest.mark.parametrize("fill_ratio, placed_last", [
    (0.0, 0.03 * 40 * P),  # off (the model before this change): the rise from 20 to 40 BTC is cut to 3 % of 40 BTC
    (2.0, 20 * P),  # the OI doubled within the hour: the market is filling, the whole $1.2M rise is placed
    (3.0, 0.03 * 40 * P),  # ... but it has not tripled: capped
])
def test_a_rise_past_the_cap_is_kept_while_the_oi_is_filling(fill_ratio, placed_last):
    """A market whose OI grows from nothing (a new listing; the demo's market that opens empty): each rise is many
    times 3 % of the young OI. With ``cap_open_fill_ratio`` the cap yields to the traded notional once the asset's OI
    is that many times what it was an hour ago; the step that makes the growth is judged before it counts."""
    m = model({"cap_rel": 0.03, "cap_open_fill_ratio": fill_ratio})
    m.update(oi_rows((0.0, 10.0, P, BIN)), EMPTY_T, EMPTY_L)
    _step(m, 300.0, 20.0)  # 10 → 20 BTC: the OI has not grown yet: capped (3 % of 20 BTC)
    first = _placed(m)
    assert first == pytest.approx(0.03 * 20 * P)
    _step(m, 600.0, 40.0)
    assert _placed(m) - first == pytest.approx(placed_last)
    assert m.stats["capped"] == (1 if placed_last == 20 * P else 2)


def test_a_held_oi_keeps_its_cap():
    """A market that holds its open interest: one whale's open on the venue is still cut to 3 % of the OI (the steady
    market lost 1.755 → 1.666 × the baseline when every such rise was kept, ``cap_open_volume``)."""
    got = []
    for params in ({"cap_open_fill_ratio": 2.0}, {"cap_open_volume": True}):
        m = model({"cap_rel": 0.03, **params})
        m.update(oi_rows((0.0, 100.0, P, BIN)), EMPTY_T, EMPTY_L)
        _step(m, 300.0, 102.0)
        _step(m, 600.0, 150.0, traded=5e6)  # a $2.9M whale: the asset's OI 1.02× what it was
        got.append(_placed(m))
    assert got[0] == pytest.approx(2 * P + 0.03 * 150 * P)  # 100 → 102 BTC is under the cap; the whale is cut
    assert got[1] == pytest.approx(2 * P + 48 * P)


def test_oi_fill_ratio():
    f = OIFill(4, window_minutes=60)
    assert f.ratio() == 1.0
    f.add(0.0, 0, 1e6)
    f.add(30.0, 0, 1e6)
    f.add(90.0, 0, 3e6)
    assert f.ratio() == pytest.approx(3.0)  # 3M now, 1M at the window's start
    f.add(100.0, 0, 1.5e6)  # the last sample of a minute is its close
    assert f.ratio() == pytest.approx(1.5)
    f.add(125.0, 1, 1e6)  # a venue joins: the sum with it is not growth, the history starts again
    assert f.ratio() == pytest.approx(1.0)
    f.add(185.0, 1, 3e6)
    assert f.ratio() == pytest.approx(4.5e6 / 2.5e6)
    f.add(60 * 63.0, 0, 1.5e6)  # over an hour later: the minutes before the window are forgotten
    assert f.ratio() == pytest.approx(4.5e6 / 4.5e6)
    f.add(60 * 63.0 + 1, 0, math.nan)  # not a sample
    assert f.ratio() == pytest.approx(1.0)


def test_a_glitch_does_not_hold_the_gate_open():
    """A venue printing a near-zero OI for one sample mid-window is not the start of a filling market."""
    f = OIFill(4, window_minutes=60)
    f.add(0.0, 0, 1e6)
    f.add(600.0, 0, 1e3)
    f.add(601.0, 0, 1e6)
    assert f.ratio() == pytest.approx(1.0)


def test_venues_joining_are_not_growth():
    """A live start: venues report one after another; the sum grows with each but the market is not filling."""
    m = model({"cap_rel": 0.03, "cap_open_fill_ratio": 2.0})
    m.update(oi_rows((0.0, 10.0, P, BIN)), EMPTY_T, EMPTY_L)
    m.update(oi_rows((1.0, 100.0, P, BYB)), EMPTY_T, EMPTY_L)  # the sum 11× the first venue's OI
    _step(m, 300.0, 20.0)
    assert _placed(m) == pytest.approx(0.03 * 20 * P)  # capped: the sum went 110 → 110 BTC, not filling


def test_on_by_default_in_a_market_that_fills_from_nothing():
    """The default (``cap_open_fill_ratio`` 4): once the OI is four times what it was an hour ago, a rise is placed
    whole; before, each was cut to 3 % of the young OI."""
    m = model({"cap_rel": 0.03})
    m.update(oi_rows((0.0, 10.0, P, BIN)), EMPTY_T, EMPTY_L)
    for t, oi in ((300.0, 20.0), (600.0, 40.0)):  # 2x, then 4x: each step judged before it counts
        _step(m, t, oi)
    before = _placed(m)
    assert before == pytest.approx(0.03 * 20 * P + 0.03 * 40 * P)
    _step(m, 900.0, 60.0)
    assert _placed(m) - before == pytest.approx(20 * P)

"""Exact positions through the engine: the Positions mode's grid, the coverage label, the verdict's exact
magnets and the live accuracy on the snapshot, from a PositionBook filled with constructed positions."""

import copy

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.core import events as ev
from liqmap.core.engine import Engine
from liqmap.core.grids.modes import exact_layers
from liqmap.core.grids.window import make_window
from liqmap.core.market import Market
from liqmap.core.positions import SEGMENT_DTYPE, ExactPosition, PositionBook

T0 = 1_700_000_040.0  # on a minute boundary + 40 s
# The venue whose positions are exact: Hyperliquid once it is a venue; any venue's id works for the engine
VENUE = "hyperliquid" if "hyperliquid" in ev.VENUE_ID else "bitmex"


def test_exact_layers_draw_each_band_over_its_columns():
    win = make_window(T0, "1m", 10, 50.0, 1980, 40)  # rows 1980..2019 (99,000 .. 100,950), columns of 60 s
    c0 = win.col0
    seg = np.array([
        (99_010.0, 1, 1e6, (c0 + 2) * 60.0 + 5, (c0 + 4) * 60.0 + 1),  # long band, columns 2..4
        (100_500.0, -1, 2e6, (c0 - 50) * 60.0, np.inf),  # short band open since before the window: to now
        (10.0, 1, 5e6, (c0 + 1) * 60.0, np.inf),  # off the rows: dropped, never clipped onto the edge
    ], dtype=SEGMENT_DTYPE)
    lo, sh = exact_layers(seg, win, now=T0)
    r_long, r_short = 1980 - 1980, 2010 - 1980
    assert lo[r_long].tolist() == [0, 0, 1e6, 1e6, 1e6, 0, 0, 0, 0, 0]
    assert sh[r_short].tolist() == [2e6] * 10
    assert lo.sum() == 3e6 and sh.sum() == 2e7


def _positions(ts):
    w = ["0x" + f"{i:040x}" for i in range(4)]
    return {
        w[0]: [ExactPosition(w[0], "BTC", 10.0, 100_000.0, 20, True, 97_000.0, 50_000.0, ts)],
        w[1]: [ExactPosition(w[1], "BTC", 2.0, 100_000.0, 20, True, 97_010.0, 10_000.0, ts)],
        w[2]: [ExactPosition(w[2], "BTC", -4.0, 100_000.0, 10, False, 104_000.0, 40_000.0, ts)],
        w[3]: [ExactPosition(w[3], "ETH", 1.0, 3_000.0, 10, True, 2_800.0, 300.0, ts)],
    }


def test_engine_positions_mode_label_verdict_and_accuracy():
    cfg = copy.deepcopy(DEFAULTS)
    clock = lambda: T0  # noqa: E731
    m = Market(["BTC", "ETH"], clock=clock)
    rng = np.random.default_rng(3)
    tr = np.zeros(200, ev.TRADE_DTYPE)
    tr["ts"] = np.linspace(T0 - 600, T0 - 1, 200)
    tr["price"] = 100_000.0 + rng.normal(0, 5, 200)
    tr["qty"], tr["side"], tr["venue"] = 0.1, 1, ev.VENUE_ID[VENUE]
    tr["usd"] = tr["price"] * tr["qty"]
    m.add("trade", "BTC", tr)
    m.add("oi", "BTC", ev.open_interest([(T0 - 5, 100.0, 1e7, 100_000.0, ev.VENUE_ID[VENUE])]))
    book = PositionBook()
    for wallet, ps in _positions(T0 - 300).items():
        book.apply(wallet, ps, T0 - 300)
    eng = Engine(cfg, m, clock=clock)
    eng.attach_positions(book, VENUE, every_s=300.0)
    key = eng.set_view("BTC", "positions", "1m", None, 200, None)
    eng.step(T0)
    snap = eng.latest(key)
    g = snap.grid
    assert g.mode == "positions"
    ex = snap.reports["exact"]
    # 3 BTC wallets; |10| + |2| + |4| = 16 BTC of both sides against 100 BTC one-sided OI: 8 %
    assert ex["label"] == f"exact: 3 wallets, 8 % of {'HL' if VENUE == 'hyperliquid' else VENUE} OI, 0 % at ≤3×"
    assert ex["coverage"]["oi_share"] == pytest.approx(16 / 200)
    assert ex["at_risk_long_usd"] == pytest.approx(10 * 97_000 + 2 * 97_010)
    assert ex["at_risk_short_usd"] == pytest.approx(4 * 104_000)
    # the right edge: exact levels now, by row
    step = g.step
    row = int(np.floor(97_000.0 / step + 1e-9)) - g.row0
    assert g.profile_long[row] == pytest.approx(10 * 97_000 + (2 * 97_010 if int(97_010 / step) == int(97_000 / step)
                                                              else 0))
    # the bands: the long cluster from when it was first seen (300 s ago) to the last column
    col_seen = int((T0 - 300) // 60) - g.col0
    assert g.long[row, col_seen:].min() > 0 and g.long[row, :col_seen].max() == 0
    # the verdict names the exact magnet below price, and says it is exact
    assert "▼ 97,000" in snap.verdict and "exact $" in snap.verdict.split(" · ")[0]
    # live accuracy: the model knows nothing of these wallets yet (no OI steps): it ranks like the baseline
    acc = ex["accuracy"]
    assert acc["n"] == 1 and acc["model_share"] == pytest.approx(acc["base_share"])
    assert ex["accuracy_text"].startswith("model ")


def test_verdict_exact_magnet_wording():
    from liqmap.core.reports.verdict import Magnet

    assert Magnet(1, 0.0, 0.0, 2.1e6).what() == "exact $2.1M"
    assert Magnet(1, 3e6, 0.0, 2.1e6).what() == "exact $2.1M + wall $3.0M"
    assert Magnet(1, 3e6, 1e5, 0.0).what() == "wall $3.0M"


def test_exact_levels_price_traded_through_leave_the_map_until_the_next_poll():
    """A short whose liquidation price is below the last price (a long's above) cannot still stand: it was
    liquidated or closed since its wallet's last poll. Seen on the demo: 21 of 44 tracked BTC shorts, polled
    during the pre-roll, still drew green bars below a price that had run through them."""
    import numpy as np

    from liqmap.core.engine.exact import standing

    b = np.array([90, 95, 100, 105, 110])
    lo = np.array([1.0, 2.0, 0.0, 4.0, 0.0])  # longs below 100 stand; the one at 105 is crossed
    sh = np.array([0.0, 3.0, 5.0, 0.0, 6.0])  # shorts above 100 stand; at 95 and at price they are gone
    out_b, out_lo, out_sh = standing((b, lo, sh), price=100.2, step=1.0)
    assert out_b.tolist() == [90, 95, 110]
    assert out_lo.tolist() == [1.0, 2.0, 0.0] and out_sh.tolist() == [0.0, 0.0, 6.0]
    assert standing((b, lo, sh), price=None, step=1.0)[0].tolist() == b.tolist()  # no price yet: as polled


def test_positions_body_ends_a_band_where_price_traded_through_it():
    """A long's band stops at the column where price first traded at or below its liquidation price (a short's
    at or above), not at its wallet's next poll: before the fix the body drew the long at 99,500 on to the
    right edge for the eight minutes after price ran through it, though the strip had dropped it."""
    cfg = copy.deepcopy(DEFAULTS)
    now = [T0 - 600]
    m = Market(["BTC"], clock=lambda: now[0])
    vid = ev.VENUE_ID[VENUE]

    def trades(t0, t1, price):
        tr = np.zeros(30, ev.TRADE_DTYPE)
        tr["ts"] = np.linspace(t0, t1, 30)
        tr["price"] = price
        tr["qty"], tr["side"], tr["venue"] = 0.1, -1, vid
        tr["usd"] = tr["price"] * tr["qty"]
        return tr

    w = ["0x" + f"{i:040x}" for i in range(3)]
    book = PositionBook()
    eng = Engine(cfg, m, clock=lambda: now[0])
    eng.attach_positions(book, VENUE, every_s=300.0)
    key = eng.set_view("BTC", "positions", "1m", None, 200, None)
    m.add("trade", "BTC", trades(T0 - 900, T0 - 601, 100_000.0))
    m.add("oi", "BTC", ev.open_interest([(T0 - 601, 100.0, 1e7, 100_000.0, vid)]))
    book.apply(w[0], [ExactPosition(w[0], "BTC", 5.0, 100_000.0, 50, True, 99_500.0, 10_000.0, T0 - 600)], T0 - 600)
    book.apply(w[1], [ExactPosition(w[1], "BTC", 3.0, 100_000.0, 20, True, 96_000.0, 15_000.0, T0 - 600)], T0 - 600)
    book.apply(w[2], [ExactPosition(w[2], "BTC", -2.0, 100_000.0, 20, True, 104_000.0, 10_000.0, T0 - 600)],
               T0 - 600)
    eng.step(now[0])
    cross_t = T0 - 480 + 5  # price falls through 99,500 five seconds into this minute
    for t0, price in ((T0 - 599, 100_000.0), (T0 - 540, 99_900.0), (cross_t, 99_400.0), (T0 - 420, 99_450.0),
                      (T0 - 360, 99_300.0), (T0 - 300, 99_350.0), (T0 - 240, 99_200.0), (T0 - 180, 99_250.0),
                      (T0 - 120, 99_300.0), (T0 - 60, 99_250.0)):
        now[0] = t0 + 59 if t0 != cross_t else t0 + 54
        m.add("trade", "BTC", trades(t0, now[0], price))
        eng.step(now[0])
    now[0] = T0
    eng.step(T0)
    g = eng.latest(key).grid
    row = int(np.floor(99_500.0 / g.step + 1e-9)) - g.row0
    col_seen = int((T0 - 600) // 60) - g.col0
    col_cross = int(cross_t // 60) - g.col0
    assert g.long[row, col_seen:col_cross + 1].min() > 0  # drawn from its poll to the minute price crossed it
    assert g.long[row, col_cross + 1:].max() == 0  # and not after, though its wallet has not been polled since
    seg = book.segments("BTC")
    crossed = seg[seg["price"] == 99_500.0]
    assert len(crossed) == 1 and crossed[0]["end"] == pytest.approx(cross_t)
    # the others stand: the long further down and the short above run to the right edge
    for px, layer in ((96_000.0, g.long), (104_000.0, g.short)):
        r = int(np.floor(px / g.step + 1e-9)) - g.row0
        assert layer[r, col_seen:].min() > 0
    assert np.isinf(seg[seg["price"] != 99_500.0]["end"]).all()
    # the wallet's next poll says it is still there (not liquidated): its band starts again at that poll
    book.apply(w[0], [ExactPosition(w[0], "BTC", 5.0, 100_000.0, 50, True, 99_500.0, 10_000.0, T0)], T0)
    seg = book.segments("BTC")
    again = seg[seg["price"] == 99_500.0]
    assert sorted(again["start"].tolist()) == [T0 - 600, T0] and np.isinf(again["end"]).sum() == 1


def test_no_accuracy_comparison_while_the_assets_history_is_being_written():
    # The demo's pre-roll (and a live back-fill) feeds a held asset at the history's own times while the book holds
    # the wallets as polled now: a comparison there scores the model's past against positions it could not yet have
    # seen (the demo's panel read "model 6 % vs base 9 % (0.7×) n=29" 30 s after launch, every comparison made in
    # the pre-roll). Held: none is made; released: the next due one is.
    cfg = copy.deepcopy(DEFAULTS)
    now = [T0]
    m = Market(["BTC", "ETH"], clock=lambda: now[0])
    tr = np.zeros(50, ev.TRADE_DTYPE)
    tr["ts"] = np.linspace(T0 - 600, T0 - 1, 50)
    tr["price"], tr["qty"], tr["side"], tr["venue"] = 100_000.0, 0.1, 1, ev.VENUE_ID[VENUE]
    tr["usd"] = tr["price"] * tr["qty"]
    m.add("trade", "BTC", tr)
    m.add("oi", "BTC", ev.open_interest([(T0 - 5, 100.0, 1e7, 100_000.0, ev.VENUE_ID[VENUE])]))
    book = PositionBook()
    for wallet, ps in _positions(T0 + 3600).items():  # polled an hour after the history being written
        book.apply(wallet, ps, T0 + 3600)
    eng = Engine(cfg, m, clock=lambda: now[0])
    eng.attach_positions(book, VENUE, every_s=300.0)
    eng.hold(["BTC"])
    eng.ingest("BTC", T0)
    st = eng.state("BTC")
    assert st.exact is not None and st.exact.view is not None  # the coverage and levels are shown ...
    assert st.exact.log.score().n == 0  # ... but nothing is scored against the past
    eng.release("BTC")
    now[0] = T0 + 3600
    m.add("trade", "BTC", tr[-1:].copy())
    eng.ingest("BTC", now[0])
    assert st.exact.log.score().n == 1
